"""What a model spec names: an offline model, a GGUF file, a local directory, or a hub id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ModelSpecError
from .offline import OFFLINE_MODELS

SpecKind = Literal["offline", "gguf", "directory", "hub"]

# owner/name as the hub spells it; a single bare name is ambiguous with a typo'd path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec; ``location`` is the offline name, a path, or a hub id."""

    raw: str
    kind: SpecKind
    location: str


def parse_model_spec(spec: str) -> ModelSpec:
    """Classify ``spec``; raise :class:`ModelSpecError` if it names nothing loadable."""
    spec = spec.strip()
    if spec in OFFLINE_MODELS:
        return ModelSpec(spec, "offline", spec)
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelSpecError(f"model spec '{spec}': no such GGUF file")
        return ModelSpec(spec, "gguf", str(path.resolve()))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSpecError(
                f"model spec '{spec}': directory has no config.json (not a transformers model)"
            )
        return ModelSpec(spec, "directory", str(path.resolve()))
    if _HUB_ID.match(spec) and not path.exists():
        return ModelSpec(spec, "hub", spec)
    known = ", ".join(sorted(OFFLINE_MODELS))
    raise ModelSpecError(
        f"unknown model spec '{spec}': use {known}, a .gguf file, a model directory,"
        " or a hub id like Qwen/Qwen2.5-Coder-1.5B"
    )
