"""The on-disk cache of prepared models: GGUF converted once into a transformers directory.

Loading a GGUF through transformers dequantizes every tensor and rebuilds the tokenizer
(about 40 s here); loading the converted safetensors copy takes about a second.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError
from ..progress import ProgressFn
from .offline import OFFLINE_MODELS
from .spec import ModelSpec

_MARKER = "lossmap-prepared.json"
_TMP_INFIX = ".tmp-"  # .{target}.tmp-{pid}-{random}: a preparation's work in progress


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
    if spec.kind in ("directory", "hub", "remote"):
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

    One preparation of a model runs at a time: another one, in a thread of this process or in
    another process sharing the cache, waits (saying so through ``progress``) and then loads
    the result instead of converting again.
    """
    loc = locate(spec)
    if not loc.needs_conversion or loc.prepared:
        return loc.path
    target = Path(loc.path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(target.parent, err) from None
    with _preparation_lock(target, spec.raw, progress) as exclusive:
        if (target / _MARKER).is_file():  # prepared by whoever held the lock before us
            return target
        if exclusive:  # no preparation of this model runs now: its temporary dirs are stale
            _remove_stale_tmp(target)
        _build(spec, target, progress)
    return target


def _build(spec: ModelSpec, target: Path, progress: ProgressFn | None) -> None:
    """Assemble and convert ``spec`` in a temporary dir, then rename it to ``target``."""
    # Unique per preparation (pid and random), so that nothing collides even where the
    # file system offers no lock.
    tmp = target.parent / f".{target.name}{_TMP_INFIX}{os.getpid()}-{secrets.token_hex(6)}"
    try:
        tmp.mkdir()  # mkdir never follows a symlink: an existing name fails
    except OSError as err:
        raise _unwritable(target.parent, err) from None
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
        if target.exists():  # an unlocked preparation (an older lossmap, no locks) won
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


def _remove_stale_tmp(target: Path) -> None:
    """Remove temporary dirs left by killed preparations of ``target`` (gigabytes each).

    Only called under the exclusive lock: every preparation holds it while its temporary
    dir exists, so any still there belongs to a process that died.
    """
    prefix = f".{target.name}{_TMP_INFIX}"
    for entry in target.parent.iterdir():
        # Only this version's names (pid-random): an older lossmap's .tmp-{pid} may be in use.
        rest = entry.name.removeprefix(prefix)
        if rest != entry.name and "-" in rest and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _unwritable(where: Path, err: OSError) -> ModelLoadError:
    return ModelLoadError(
        f"cannot write the model cache at {where} ({err.strerror or err});"
        " set LOSSMAP_CACHE_DIR to a writable directory"
    )


# -- one preparation of a model at a time ----------------------------------------------------

#: How often a waiting preparation tries again (and repeats its progress message).
_POLL_S = 0.2

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def _preparation_lock(target: Path, name: str, progress: ProgressFn | None) -> Iterator[bool]:
    """Hold the lock on preparing ``target``: first among this process's threads, then among
    processes, by an OS file lock in ``<cache>/locks`` that the OS releases if its holder dies.

    Yields whether the file lock is held: ``False`` where the file system has no locks, and
    the preparation goes ahead unlocked.
    """
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(str(target), threading.Lock())
    # Threads queue here rather than on the file lock alone: on NFS, flock becomes a POSIX
    # record lock, which is per process and would let two threads of one process in at once.
    if not lock.acquire(blocking=False):
        while True:
            if progress:
                progress(f"waiting for another preparation of {name} in this process", 0, None)
            if lock.acquire(timeout=_POLL_S):
                break
    try:
        fd = _open_lock_file(target.parent.parent / "locks" / f"{target.name}.lock")
        try:
            locked = _acquire_file_lock(fd, name, progress)
            try:
                yield locked
            finally:
                if locked:
                    _unlock(fd)
        finally:
            os.close(fd)
    finally:
        lock.release()


def _acquire_file_lock(fd: int, name: str, progress: ProgressFn | None) -> bool:
    """Wait for the file lock on ``fd``; ``False`` if the file system does not lock."""
    # Polled, not blocking: the wait is reported, and Windows has no blocking lock call.
    while True:
        try:
            if _try_lock(fd):
                return True
        except OSError:  # ENOLCK, ENOTSUP: the unique temporary dirs still keep it safe
            return False
        if progress:
            progress(f"waiting for another lossmap process preparing {name}", 0, None)
        time.sleep(_POLL_S)


if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)  # msvcrt locks bytes from the current position
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EDEADLK):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        # flock, not lockf: it is per open file, not per process, and released on death.
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _open_lock_file(path: Path) -> int:
    """Open ``path`` (creating it and its directory) without following a symlink at either.

    lossmap makes both itself, so a link there is nobody's choice. The file stays after use:
    removing a lock file races with a process about to lock it.
    """
    flags = os.O_RDONLY | os.O_CREAT  # flock needs no write access; a shared cache works
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0)
    dir_flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        path.parent.mkdir(exist_ok=True)
        if os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY"):
            dir_fd = os.open(path.parent, dir_flags)
            try:
                return os.open(path.name, flags, 0o666, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        if _is_link(path.parent) or _is_link(path):  # Windows: no O_NOFOLLOW, check first
            raise OSError(errno.ELOOP, "a symbolic link")
        return os.open(path, flags, 0o666)
    except OSError as err:
        for where in (path.parent, path):
            if _is_link(where):
                raise ModelLoadError(
                    f"refusing to follow the symbolic link {where} in the model cache;"
                    " remove it (lossmap creates that itself)"
                ) from None
        raise _unwritable(path.parent, err) from None


def _is_link(path: Path) -> bool:
    isjunction = getattr(os.path, "isjunction", None)  # Windows junctions, Python 3.12+
    return path.is_symlink() or bool(isjunction and isjunction(path))


#: The callback of the conversion running on each thread; the swapped-in ``tqdm`` reads it.
_tensor_progress_of = threading.local()
_tqdm_swap = threading.Lock()
_tqdm_users = 0  # conversions under way (in any thread), under ``_tqdm_swap``
_tqdm_original: Callable | None = None


def _report_tensors(items, desc: str = "", **_: object) -> Iterator:
    """transformers' ``tqdm`` while conversions run: reports to the calling thread's callback."""
    progress = getattr(_tensor_progress_of, "fn", None)
    items = list(items)
    for i, item in enumerate(items):
        if progress:
            progress("dequantizing GGUF weights", i, len(items))
        yield item


@contextmanager
def _tensor_progress(progress: ProgressFn | None) -> Iterator[None]:
    """Route transformers' per-tensor GGUF progress bar to ``progress`` (or silence it).

    transformers draws that bar with tqdm directly, ignoring its own progress-bar switch,
    so the module's ``tqdm`` is swapped while any conversion runs. Conversions of different
    models may overlap in threads: the first one in swaps, the last one out restores, and
    each thread's tensors are reported to its own callback.
    """
    global _tqdm_users, _tqdm_original
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    _tensor_progress_of.fn = progress
    with _tqdm_swap:
        if _tqdm_users == 0:
            _tqdm_original = gguf_utils.tqdm
            gguf_utils.tqdm = _report_tensors
        _tqdm_users += 1
    try:
        yield
    finally:
        _tensor_progress_of.fn = None
        with _tqdm_swap:
            _tqdm_users -= 1
            if _tqdm_users == 0:
                gguf_utils.tqdm = _tqdm_original


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
