"""The runtime setting (``--runtime``, the server's ``runtime``): how models compute on a CPU.

Names only, importable without torch (the CLI's argument parser, the server's settings);
:mod:`precision` turns a runtime into arithmetic.
"""

from __future__ import annotations

from ..errors import ModelLoadError

AUTO = "auto"
#: transformers in float32 (the reference; the choice on CPUs without bfloat16 matrix units).
FLOAT32 = "float32"
#: transformers with the linear layers in bfloat16 on the CPU's matrix units.
BFLOAT16_MATMULS = "bfloat16-matmuls"
RUNTIMES = (AUTO, FLOAT32, BFLOAT16_MATMULS)


def runtime_name(runtime: str) -> str | None:
    """``runtime`` as one of :data:`RUNTIMES` (case and surrounding space ignored), or None."""
    name = runtime.strip().lower()
    return name if name in RUNTIMES else None


def check_runtime(runtime: str | None) -> str:
    """``runtime`` normalised (None: auto); :class:`ModelLoadError` naming the choices."""
    name = runtime_name(runtime or AUTO)
    if name is None:
        raise ModelLoadError(f"unknown runtime {runtime!r}: use {', '.join(RUNTIMES)}")
    return name
