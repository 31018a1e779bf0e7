"""Reviewing changes: which changed lines surprise the model most (``lossmap diff``)."""
