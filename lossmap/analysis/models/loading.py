"""Loading a causal LM and its fast tokenizer onto a device, ready for scoring."""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import LossmapError, ModelLoadError
from ..progress import ProgressFn
from .devices import pick_device
from .precision import FLOAT32, MIXED, precision_of, use_bfloat16_matmuls
from .remote import RemoteModel, connect, parse_remote_spec
from .row_exact import RowBlocks
from .runtime import AUTO
from .spec import ModelSpec, parse_model_spec
from .store import prepare


@dataclass
class LoadedModel:
    """A model resident on ``device`` with the tokenizer that matches it; or, with
    ``remote`` set, a model on a server (``model`` is then None and ``tokenizer`` the local
    one the server was checked against)."""

    spec: ModelSpec
    model: Any  # a transformers PreTrainedModel with a causal LM head
    tokenizer: Any  # a transformers fast tokenizer
    device: torch.device
    dtype: torch.dtype
    path: str
    load_seconds: float
    #: SHA-256 over the tokenizer's files, or None when they are not local files: two
    #: models with the same digest tokenize alike (see ``roles.share_tokenizer``).
    tokenizer_digest: str | None = None
    #: The arithmetic it runs in (``precision.MIXED`` on CPUs with bfloat16 matrix units).
    precision: str = FLOAT32
    #: Shared by the bfloat16 matmuls of a :data:`MIXED` model (``precision.exact_rows``).
    row_blocks: RowBlocks | None = None
    #: The server connection of a remote model (see :mod:`remote`).
    remote: RemoteModel | None = None
    # Filled lazily by scoring: vocabulary-sized tables that depend only on the tokenizer.
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.raw

    @property
    def context_length(self) -> int:
        """The longest sequence the model was trained on (positions), or that the server
        takes."""
        if self.remote is not None:
            return self.remote.context_length
        n = getattr(self.model.config, "max_position_embeddings", None)
        return int(n) if n else 2048


def load_model(
    spec: str | ModelSpec = "default",
    device: str | None = "auto",
    trust_remote_code: bool = False,
    progress: ProgressFn | None = None,
    tokenizer_like: LoadedModel | None = None,
    runtime: str = AUTO,
) -> LoadedModel:
    """Prepare (if needed) and load ``spec``; raise :class:`LossmapError` with the reason.

    ``tokenizer_like``: a loaded model whose tokenizer is reused when ``spec``'s tokenizer
    files are the same bytes (a judge beside the live model of its family). ``runtime``: how
    a CPU model computes (``auto``, ``float32``, ``bfloat16-matmuls``; see :mod:`precision`).
    """
    start = time.perf_counter()
    quiet_libraries()  # before prepare: a GGUF conversion runs transformers too
    parsed = parse_model_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "remote":
        return _connect(parsed, trust_remote_code, progress, tokenizer_like, start)
    dev, dtype = pick_device(device)
    precision = precision_of(dev, dtype, runtime)  # before loading: a bad setting fails fast
    path = prepare(parsed, progress)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:
        progress("loading model", 0, None)
    local = parsed.kind != "hub"
    digest = tokenizer_digest(path)
    # Reusing saves memory and, in the server, about 0.3 s of loading that holds the GIL
    # (the Rust tokenizer is built from JSON without releasing it).
    reuse = digest is not None and tokenizer_like is not None
    reuse = reuse and digest == tokenizer_like.tokenizer_digest
    try:
        tokenizer = (
            tokenizer_like.tokenizer
            if reuse
            else AutoTokenizer.from_pretrained(
                str(path), trust_remote_code=trust_remote_code, local_files_only=local
            )
        )
        model = AutoModelForCausalLM.from_pretrained(
            str(path), dtype=dtype, trust_remote_code=trust_remote_code, local_files_only=local
        )
    except LossmapError:
        raise
    except Exception as err:
        hint = (
            " (no network? use 'default', a local directory or a .gguf file)" if not local else ""
        )
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"cannot load model '{parsed.raw}': {first}{hint}") from err
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"model '{parsed.raw}': lossmap needs a fast tokenizer (character offsets)"
        )
    model.to(dev)
    model.eval()
    row_blocks = use_bfloat16_matmuls(model) if precision == MIXED else None
    return LoadedModel(
        spec=parsed,
        model=model,
        tokenizer=tokenizer,
        device=dev,
        dtype=dtype,
        path=str(path),
        load_seconds=time.perf_counter() - start,
        tokenizer_digest=digest,
        precision=precision,
        row_blocks=row_blocks,
    )


def _connect(
    parsed: ModelSpec,
    trust_remote_code: bool,
    progress: ProgressFn | None,
    tokenizer_like: LoadedModel | None,
    start: float,
) -> LoadedModel:
    """A :class:`LoadedModel` for a model server: the local tokenizer named by the spec's
    ``tokenizer`` setting (prepared like any model), checked against the server's."""
    remote_spec = parse_remote_spec(parsed.raw)
    tok_spec = parse_model_spec(remote_spec.tokenizer)
    if tok_spec.kind == "remote":
        raise ModelLoadError(f"model '{parsed.raw}': the tokenizer must be a local model spec")
    path = prepare(tok_spec, progress)
    digest = tokenizer_digest(path)
    if (
        digest is not None
        and tokenizer_like is not None
        and digest == tokenizer_like.tokenizer_digest
    ):
        tokenizer = tokenizer_like.tokenizer
    else:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(
                str(path),
                trust_remote_code=trust_remote_code,
                local_files_only=tok_spec.kind != "hub",
            )
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelLoadError(
                f"cannot load tokenizer '{remote_spec.tokenizer}': {first}"
            ) from err
    if progress:
        progress(f"connecting to {remote_spec.url}", 0, None)
    remote = connect(remote_spec, tokenizer)
    return LoadedModel(
        spec=parsed,
        model=None,
        tokenizer=tokenizer,
        device=torch.device("cpu"),
        dtype=torch.float32,
        path=remote_spec.url,
        load_seconds=time.perf_counter() - start,
        tokenizer_digest=digest,
        precision=f"remote, {remote.engine}",
        remote=remote,
    )


#: The libraries that load and run models, as a warnings-filter module pattern.
_LIBRARIES = r"(transformers|torch|accelerate|huggingface_hub|tokenizers|safetensors|gguf)(\.|$)"
_loggers_quieted = False


def quiet_libraries() -> None:
    """Keep the model libraries' warnings, notices and progress bars out of the terminal and
    the server log (the first model load calls this).

    Their warnings (deprecations of calls, notices such as "generation flags are not valid")
    speak of the library's internals, not of the user's code; the test suite turns those that
    lossmap's calls cause into errors instead (pyproject's ``filterwarnings``). Left alone:
    lossmap's own warnings and messages, the libraries' errors (their loggers still pass
    ERROR), and whatever the user asked for: ``-W``/``PYTHONWARNINGS`` filters, and
    pytest's, stay ahead of the appended filter, and ``TRANSFORMERS_VERBOSITY`` or
    ``HF_HUB_VERBOSITY`` keep their logger at the level they name.
    """
    global _loggers_quieted
    # Appended, so any filter already set (user, pytest) matches first; re-added on each call
    # (a no-op when present) in case a ``warnings.catch_warnings`` block has dropped it since.
    warnings.filterwarnings("ignore", module=_LIBRARIES, append=True)
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # transformers' bars and huggingface_hub's
    if _loggers_quieted:  # once: a level set later by the host program stays
        return
    _loggers_quieted = True
    if not os.environ.get("TRANSFORMERS_VERBOSITY"):
        hf_logging.set_verbosity_error()
    if not os.environ.get("HF_HUB_VERBOSITY"):
        hub_logging.set_verbosity_error()


#: The files a transformers tokenizer is built from (those present are hashed).
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)


def tokenizer_digest(path: str | Path) -> str | None:
    """SHA-256 over a model directory's tokenizer files; None without a ``tokenizer.json``
    (a hub id, or a slow tokenizer's files only)."""
    folder = Path(path)
    if not (folder / "tokenizer.json").is_file():
        return None
    digest = hashlib.sha256()
    for name in _TOKENIZER_FILES:
        file = folder / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()
