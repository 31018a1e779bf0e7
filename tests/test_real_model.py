"""With the real offline default model (Qwen2.5-Coder-0.5B-Instruct, dequantised GGUF)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from lossmap.analysis import analyze_text, score_text

from conftest import REPO

pytestmark = pytest.mark.model

NON_ASCII = 'def grüß(名前):\n    return f"😀 {名前}!"  # é\n'


def test_surprise_equals_a_direct_forward_pass(real_model):
    scored = score_text(real_model, NON_ASCII, chunk=7)  # small chunks: exercise chunking
    ids = [real_model.tokenizer.bos_token_id] + [t.token_id for t in scored.tokens]
    with torch.no_grad():
        logits = real_model.model(torch.tensor([ids], device=real_model.device)).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    for i, tok in enumerate(scored.tokens, start=1):
        direct = -logp[i - 1, ids[i]].item() / math.log(2)
        assert abs(tok.surprise - direct) <= 1e-3, (tok.text, tok.surprise, direct)
        probs = logp[i - 1].exp()
        entropy = -(probs * logp[i - 1]).sum().item() / math.log(2)
        assert abs(tok.entropy - entropy) <= 1e-3
        assert tok.rank == int((logp[i - 1] > logp[i - 1, ids[i]]).sum()) + 1


def test_default_model_uses_its_bos_for_the_first_token(real_model):
    scored = score_text(real_model, "import os\n")
    assert scored.bos_token == "<|endoftext|>"
    assert scored.tokens[0].scored


FIND_MAX = """def find_max(items):
    best = items[0]
    for item in items[1:]:
        if item > best:
            best = item
    return item
"""  # bug: returns item, not best (line 6)

COUNT_POSITIVE = """def total(xs):
    s = 0
    for i in range(len(xs)):
        s += xs[i]
    return s


def count_positive(xs):
    n = 0
    i = 0
    while i > len(xs):
        if xs[i] > 0:
            n += 1
        i += 1
    return n
"""  # bug: the loop bound should be i < len(xs) (line 11)


@pytest.mark.parametrize(
    ("source", "function", "bug_line"),
    [(FIND_MAX, "find_max", 6), (COUNT_POSITIVE, "count_positive", 11)],
    ids=["wrong-variable-returned", "loop-bound-flipped"],
)
def test_planted_bug_line_ranks_in_top_three_of_its_function(
    real_model, source, function, bug_line
):
    analysis = analyze_text(real_model, source, "planted.py")
    (fn,) = [d for d in analysis.definitions if d.name == function]
    ranked = [ln.line for ln in analysis.top_lines() if fn.start_line <= ln.line <= fn.end_line]
    assert bug_line in ranked[:3], ranked


def test_whitespace_alone_does_not_make_a_token_surprising(real_model):
    # "(1)\n\n\n\n" merges the closing paren with unusual blank lines.
    analysis = analyze_text(real_model, "x = max(1)\n\n\n\n\ny = 2\n", "w.py")
    merged = [t for t in analysis.tokens if t.text.startswith(")") and t.text.count("\n") > 1]
    assert merged, [t.text for t in analysis.tokens]
    tok = merged[0]
    assert tok.code_surprise < tok.surprise - 1.0


def test_scan_with_the_default_roles_names_the_judge_and_finds_the_planted_bug():
    """The defaults on CPU: the 0.5B scores live, the 1.5B judges the top lines."""
    proc = subprocess.run(
        [sys.executable, "-m", "lossmap.cli", "scan", "examples/planted_bug.py", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    doc = json.loads(proc.stdout)
    assert doc["model"]["spec"] == "default"
    assert doc["judge"]["spec"] == "default-large"
    (f,) = doc["files"]
    assert f["judge"] == "default-large"
    assert f["top_lines"][0] == 16  # `return item` where `return best` was meant
    assert f["lines"][15]["two_sided"]["line_level"] is False  # one tokenizer: per token
    worst = f["tokens"][f["lines"][15]["worst_token"]]
    assert worst["text"] == " item"
    assert worst["alternatives"][0]["text"] == " best"
