"""Corpus reports: the Perplexed analysis over a code base (``lossmap report``)."""
