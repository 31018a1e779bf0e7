"""Library drift: lossmap's calls into transformers raise no deprecation warning, and no
library warning reaches the terminal of a ``lossmap scan``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager

from lossmap.analysis import analyze_text
from lossmap.analysis.document_scorer import DocumentScorer
from lossmap.analysis.kv_cache import cache_args
from lossmap.analysis.two_sided import confirm_lines

from conftest import REPO

SOURCE = (
    "def find_max(items):\n    best = items[0]\n    for item in items[1:]:\n"
    "        if item > best:\n            best = item\n    return item\n"
) * 3
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
        # The shared cache (rebuilt past a short max_prefix, cropped between lines), with
        # greedy suggestions decoded over it.
        confirm_lines(live, analysis, lines, suffix_tokens=8, max_prefix=24, suggest=True)
        # Whole prompts side by side; a suggestion starts its own cache.
        confirm_lines(live, analysis, lines, suffix_tokens=8, suggest=True, batch=2)
        # A judge of the same tokenizer (its causal margins off the shared cache) and one
        # with a tokenizer of its own (line verdicts).
        confirm_lines(twin, analysis, lines, suffix_tokens=8, judge_causal=True)
        confirm_lines(other, analysis, lines, suffix_tokens=8, line_level=True)
    assert seen == []


def test_scan_prints_no_library_warnings(fim_model_dirs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS",)}
    env.pop("TRANSFORMERS_VERBOSITY", None)
    live = str(fim_model_dirs[0])
    run = subprocess.run(
        [sys.executable, "-m", "lossmap", "scan", "--model", live, "--judge", "same",
         "--device", "cpu", str(REPO / "examples" / "planted_bug.py")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "planted_bug.py" in run.stdout  # it did scan, with two-sided confirmation
    noise = [
        line
        for line in run.stderr.splitlines()
        if any(w in line.lower() for w in ("warning", "deprecat", "it/s]"))
    ]
    assert noise == [], run.stderr
