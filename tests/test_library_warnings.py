"""Library drift: lossmap's calls into transformers raise no deprecation warning, and no
library warning reaches the terminal of a ``lossmap scan``."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from contextlib import contextmanager

from lossmap.analysis import analyze_text
from lossmap.analysis.scoring.document_scorer import DocumentScorer
from lossmap.analysis.scoring.kv_cache import cache_args
from lossmap.analysis.verdicts.two_sided import confirm_lines

from conftest import REPO

SOURCE = (
    "def find_max(items):\n    best = items[0]\n    for item in items[1:]:\n"
    "        if item > best:\n            best = item\n    return item\n"
) * 3
PLANTED = str(REPO / "examples" / "planted_bug.py")
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


@contextmanager
def deprecations_seen():
    """Every deprecation warning raised inside, whatever filters (the library's quieting
    included) are installed, and transformers' deprecation notices logged as warnings."""
    logged: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = logged.append  # type: ignore[method-assign]
    hf = logging.getLogger("transformers")
    level = hf.level
    hf.addHandler(handler)
    hf.setLevel(logging.WARNING)
    seen: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield seen
    finally:
        hf.removeHandler(handler)
        hf.setLevel(level)
    seen += [
        f"{w.category.__name__} at {w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, DEPRECATIONS)
    ]
    seen += [r.getMessage() for r in logged if "deprecat" in r.getMessage().lower()]


def test_incremental_scoring_with_a_kept_cache_raises_no_deprecation(tiny):
    scorer = DocumentScorer(tiny, top_k=3, window=48, min_context=12, keep_cache=True)
    with deprecations_seen() as seen:
        scorer.score(SOURCE)
        scorer.score(SOURCE.replace("return item", "return best"))  # crops the window caches
        DocumentScorer(tiny, top_k=3, keep_cache=False).score(SOURCE)
    assert seen == []


def test_the_cache_goes_by_the_name_the_model_takes(tiny):
    class Older:  # transformers 5.0-5.23 (and remote code): only the old name
        def forward(self, input_ids=None, past_key_values=None, use_cache=None, **kwargs):
            pass

    class Unreadable:
        __signature__ = "not a Signature"  # inspect.signature raises TypeError

    class Opaque:  # a forward without an introspectable signature
        forward = Unreadable()

    cache = object()
    assert cache_args(tiny.model.base_model, cache) == {"cache": cache, "use_cache": True}
    assert cache_args(Older(), cache) == {"past_key_values": cache, "use_cache": True}
    assert cache_args(Opaque(), cache) == {"past_key_values": cache, "use_cache": True}


def test_two_sided_confirmation_raises_no_deprecation(fim_models):
    live, twin, other = fim_models
    analysis = analyze_text(live, SOURCE, "f.py")
    lines = [2, 4, 6, 12, 16]
    with deprecations_seen() as seen:
        # The shared cache (rebuilt past a short prefix bound, cropped between lines), with
        # greedy suggestions decoded over it.
        confirm_lines(live, analysis, lines, suffix_tokens=8, prefix_tokens=24, suggest=True)
        # Whole prompts side by side; a suggestion starts its own cache.
        confirm_lines(live, analysis, lines, suffix_tokens=8, suggest=True, batch=2)
        # A judge of the same tokenizer (its causal margins off the shared cache) and one
        # with a tokenizer of its own (line verdicts).
        confirm_lines(twin, analysis, lines, suffix_tokens=8, judge_causal=True)
        confirm_lines(other, analysis, lines, suffix_tokens=8, line_level=True)
    assert seen == []


def _lossmap(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m lossmap`` as a user would: no warning options, no verbosity set."""
    clean = {k: v for k, v in os.environ.items() if k not in _USER_SETTINGS}
    return subprocess.run(
        [sys.executable, "-m", "lossmap", *args],
        capture_output=True, text=True, env={**clean, **(env or {})}, cwd=REPO, timeout=300,
    )  # fmt: skip


_USER_SETTINGS = ("PYTHONWARNINGS", "TRANSFORMERS_VERBOSITY", "HF_HUB_VERBOSITY")
#: What library noise looks like on stderr: warnings, transformers' logger, progress bars.
_NOISE = ("warning", "deprecat", "[transformers]", "it/s]", "huggingface")


def noise(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if any(w in ln.lower() for w in _NOISE)]


def test_scan_prints_no_library_noise(fim_model_dirs, tmp_path):
    # An instruct checkpoint's sampling settings with do_sample off: transformers logs that
    # "the following generation flags are not valid" on every load.
    model = tmp_path / "model"
    shutil.copytree(fim_model_dirs[0], model)
    config = model / "generation_config.json"
    settings = json.loads(config.read_text())
    settings.update(do_sample=False, temperature=0.7, top_p=0.8, top_k=20)
    config.write_text(json.dumps(settings))
    scan = ("scan", "--model", str(model), "--judge", "same", "--device", "cpu", PLANTED)
    run = _lossmap(*scan)
    assert run.returncode == 0, run.stderr
    assert "planted_bug.py" in run.stdout  # it did scan, with two-sided confirmation
    assert noise(run.stderr) == [], run.stderr
    # Asked for, the notices are there.
    run = _lossmap(*scan, env={"TRANSFORMERS_VERBOSITY": "warning"})
    assert "generation flags are not valid" in run.stderr


QUIETED = """
import sys, warnings
import torch
from transformers import DynamicCache
from transformers.utils import logging
from lossmap.analysis import load_model

base = load_model(sys.argv[1], device="cpu").model.base_model
# A deprecated call (issue 15's) and a library notice: noise to the user.
base(input_ids=torch.tensor([[1, 2]]), past_key_values=DynamicCache(), use_cache=True)
logging.get_logger("transformers.somewhere").warning("a library notice")
# Errors, and warnings from outside the libraries, still show.
logging.get_logger("transformers.somewhere").error("a library error")
warnings.warn("a warning of the program's own", UserWarning)
"""


def test_library_warnings_are_quieted_but_errors_and_others_warnings_are_not(
    tiny_model_dir, tmp_path
):
    script = tmp_path / "host.py"
    script.write_text(QUIETED)
    run = subprocess.run(
        [sys.executable, str(script), str(tiny_model_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env={k: v for k, v in os.environ.items() if k not in _USER_SETTINGS},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "past_key_values" not in run.stderr and "a library notice" not in run.stderr
    assert "a library error" in run.stderr
    assert "a warning of the program's own" in run.stderr
    # A filter the user sets (here: -W error for FutureWarning) comes first.
    run = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", str(script), str(tiny_model_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env={k: v for k, v in os.environ.items() if k not in _USER_SETTINGS},
    )  # fmt: skip
    assert run.returncode != 0 and "FutureWarning: `past_key_values` is deprecated" in run.stderr
