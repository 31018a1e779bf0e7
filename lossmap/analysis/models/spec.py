"""What a model spec names: an offline model, a GGUF file, a local directory, a hub id, or a
model server (``http(s)://host:port/v1#model``, see :mod:`remote`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ModelSpecError
from .offline import OFFLINE_MODELS
from .remote import is_remote, parse_remote_spec

SpecKind = Literal["offline", "gguf", "directory", "hub", "remote"]

# owner/name as the hub spells it; a single bare name is ambiguous with a typo'd path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec; ``location`` is the offline name, a path, a hub id or a URL."""

    raw: str
    kind: SpecKind
    location: str


def parse_model_spec(spec: str) -> ModelSpec:
    """Classify ``spec``; raise :class:`ModelSpecError` if it names nothing loadable."""
    spec = spec.strip()
    if is_remote(spec):
        parse_remote_spec(spec)  # raises on a malformed one
        return ModelSpec(spec, "remote", spec)
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
        " a hub id like Qwen/Qwen2.5-Coder-1.5B, or a model server http://host:port/v1#model"
    )
