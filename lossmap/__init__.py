"""lossmap: where a code language model is surprised by your code, token by token."""

__version__ = "0.1.0"
