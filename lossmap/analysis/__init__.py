"""Model loading, per-token scoring, syntax alignment and aggregation.

This package never imports :mod:`lossmap.server`; the server and the CLI build on it.
"""

from .analyze import FileAnalysis, analyze_text
from .errors import ChecksumError, InputError, LossmapError, ModelLoadError, ModelSpecError
from .models.loading import LoadedModel, load_model
from .scoring.document_scorer import score_text
from .scoring.tokens import Alternative, ScoredText, TokenScore

__all__ = [
    "Alternative",
    "ChecksumError",
    "FileAnalysis",
    "InputError",
    "LoadedModel",
    "LossmapError",
    "ModelLoadError",
    "ModelSpecError",
    "ScoredText",
    "TokenScore",
    "analyze_text",
    "load_model",
    "score_text",
]
