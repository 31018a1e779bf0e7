"""Errors the analysis layer raises; each carries a one-line message fit for a user."""


class LossmapError(Exception):
    """Base class: the message is shown to the user as is."""


class InputError(LossmapError):
    """A file that cannot be analysed: missing, binary, not UTF-8, too large."""


class ModelSpecError(LossmapError):
    """A model spec that names nothing lossmap knows how to load."""


class ModelLoadError(LossmapError):
    """A model that exists but could not be loaded or prepared."""


class ChecksumError(ModelLoadError):
    """Model bytes whose size or SHA-256 differ from the published ones."""
