"""Live and judge roles: configuration, tokenizer sharing, and a judge with other tokens."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from lossmap.analysis import analyze_text, load_model
from lossmap.analysis.errors import ModelSpecError
from lossmap.analysis.models import roles as roles_module
from lossmap.analysis.models.offline import LARGE_MODEL
from lossmap.analysis.models.roles import resolve_roles, share_tokenizer
from lossmap.analysis.scoring.head import token_stats
from lossmap.analysis.syntax.align import CODE
from lossmap.analysis.verdicts.confirm import confirm_top_lines
from lossmap.analysis.verdicts.two_sided import confirm_lines, fim_format

# A comment line first: the first tokens of a file count in no verdict.
SOURCE = (
    "# " + "a comment " * 10 + "\n"
    "def f(x):\n    return x + 1\n\nfor i in range(10):\n    print(i)\n"
)


def test_default_roles_on_cpu_pair_the_small_live_model_with_the_large_judge():
    assert LARGE_MODEL.installed(), "pip install -e '.[model,model-large,test]'"
    roles = resolve_roles(None, None, "cpu")
    assert (roles.live, roles.judge, roles.note) == ("default", "default-large", None)
    assert resolve_roles("auto", "auto", "cpu") == roles


def test_without_the_large_model_the_default_judges_itself_and_says_so(monkeypatch):
    missing = dataclasses.replace(LARGE_MODEL, packages=("lossmap_no_such_part",))
    monkeypatch.setattr(roles_module, "LARGE_MODEL", missing)
    roles = resolve_roles(None, None, "cpu")
    assert (roles.live, roles.judge) == ("default", "default")
    assert "lossmap[model-large]" in roles.note


def test_judge_none_same_and_named(tiny_model_dir):
    assert resolve_roles("default", "none", "cpu").judge is None
    assert resolve_roles("default", "same", "cpu").judge == "default"
    assert resolve_roles("default-large", "default", "cpu").judge == "default"
    # A model the user names judges itself unless a judge is named too.
    named = resolve_roles(str(tiny_model_dir), None, "cpu")
    assert named.judge == named.live == str(tiny_model_dir)


def test_bad_roles_are_refused_with_the_setting_named():
    with pytest.raises(ModelSpecError, match=r"^judge: unknown model spec 'nope'.*none, same"):
        resolve_roles("default", "nope", "cpu")
    with pytest.raises(ModelSpecError, match=r"^model spec '/missing/m.gguf': no such GGUF file"):
        resolve_roles("/missing/m.gguf", "none", "cpu")


def test_share_tokenizer(fim_models, fim_model_dirs, tmp_path):
    live, twin, other = fim_models
    assert share_tokenizer(live, live)
    assert share_tokenizer(live, twin)  # same tokenizer files
    assert not share_tokenizer(live, other)
    # Files that differ in bytes but not in vocabulary: the slow comparison still says yes.
    edited = tmp_path / "edited"
    shutil.copytree(fim_model_dirs[1], edited)
    config = json.loads((edited / "tokenizer_config.json").read_text())
    (edited / "tokenizer_config.json").write_text(json.dumps({**config, "note": "x"}))
    reworded = load_model(str(edited), device="cpu")
    assert reworded.tokenizer_digest != live.tokenizer_digest
    assert share_tokenizer(live, reworded)


def test_a_judge_reuses_the_live_tokenizer_when_its_files_are_the_same(fim_model_dirs):
    live_dir, twin_dir, other_dir = fim_model_dirs
    live = load_model(str(live_dir), device="cpu")
    twin = load_model(str(twin_dir), device="cpu", tokenizer_like=live)
    other = load_model(str(other_dir), device="cpu", tokenizer_like=live)
    assert twin.tokenizer is live.tokenizer
    assert other.tokenizer is not live.tokenizer and len(other.tokenizer) != len(live.tokenizer)


def test_a_judge_with_the_same_tokenizer_gives_per_token_numbers(fim_models):
    live, twin, _ = fim_models
    analysis = analyze_text(live, SOURCE, "f.py", confirm=3, judge=twin)
    assert analysis.judge == twin.name
    assert analysis.two_sided
    for ts in analysis.two_sided.values():
        assert not ts.line_level and ts.tokens
    # The judge's numbers are its own, not the live model's.
    itself = analyze_text(live, SOURCE, "f.py", confirm=3)
    line = next(iter(analysis.two_sided))
    i = next(iter(analysis.two_sided[line].tokens))
    assert analysis.two_sided[line].tokens[i].surprise != itself.two_sided[line].tokens[i].surprise


def test_a_judge_with_another_tokenizer_gives_line_verdicts_and_says_so(fim_models):
    live, _, other = fim_models
    analysis = analyze_text(live, SOURCE, "f.py")
    confirm_top_lines(other, live, analysis, 3)
    assert any("tokenizes differently" in n for n in analysis.notes)
    assert len(analysis.two_sided) == 3
    by_line = {ln.line: ln for ln in analysis.lines}
    for n, ts in analysis.two_sided.items():
        assert ts.line_level and ts.tokens == {}
        assert ts.two_sided is not None and ts.two_sided >= 0
        assert ts.combined == pytest.approx(min(by_line[n].verdict, ts.two_sided))
    # Ranking still works: by the judge's verdict where it looked, else the causal one.
    final = {
        ln.line: analysis.two_sided[ln.line].combined
        if ln.line in analysis.two_sided
        else ln.verdict
        for ln in analysis.lines
        if ln.verdict is not None
    }
    ranked = [final[ln.line] for ln in analysis.top_lines()]
    assert ranked == sorted(ranked, reverse=True)


def test_the_judge_reads_its_own_causal_margins_off_its_shared_cache(fim_models):
    live, twin, _ = fim_models
    analysis = analyze_text(live, SOURCE, "f.py")
    lines = [ln.line for ln in analysis.lines if ln.verdict is not None]
    two = confirm_lines(twin, analysis, lines, suggest=False, judge_causal=True)
    ids = [t.token_id for t in analysis.tokens]
    fim = fim_format(twin.tokenizer)
    checked = 0
    for ts in two.values():
        a, b = min(ts.tokens), max(ts.tokens) + 1
        prompt = torch.tensor([[fim.prefix, *ids[:b]]])
        with torch.inference_mode():  # a fresh causal pass of the judge over the same prompt
            hidden = twin.model.base_model(input_ids=prompt).last_hidden_state[0]
            fresh = token_stats(twin, hidden[a:b], torch.tensor(ids[a:b]), 1)
        for i, st in zip(range(a, b), fresh, strict=True):
            if st[4] is not None:
                assert abs(ts.tokens[i].causal_margin - st[4]) < 1e-3
                checked += 1
        code = [
            i
            for i in ts.tokens
            if analysis.syntax[i].kind == CODE and analysis.tokens[i].code_margin is not None
        ]
        expected = max(min(ts.tokens[i].causal_margin, ts.tokens[i].code_margin) for i in code)
        assert ts.combined == pytest.approx(expected)
    assert checked > 10
    # The GPU way (whole prompts side by side, padded) reads the same causal margins.
    batched = confirm_lines(twin, analysis, lines, suggest=False, judge_causal=True, batch=3)
    assert batched.keys() == two.keys()
    for n, ts in two.items():
        for i, t in ts.tokens.items():
            got = batched[n].tokens[i]
            assert abs(got.code_margin - t.code_margin) < 1e-3
            assert (got.causal_margin is None) == (t.causal_margin is None)
            if t.causal_margin is not None:
                assert abs(got.causal_margin - t.causal_margin) < 1e-3
        assert batched[n].combined == pytest.approx(ts.combined, abs=1e-3)


def test_a_confirmation_that_must_give_way_runs_in_pieces_with_the_same_numbers(fim_models):
    live, twin, _ = fim_models
    text = SOURCE * 8  # prefixes and suffixes longer than one piece
    analysis = analyze_text(live, text, "f.py")
    lines = [ln.line for ln in analysis.lines if ln.verdict is not None][-4:]
    whole = confirm_lines(twin, analysis, lines, suggest=False, judge_causal=True)
    calls = []

    def keep_going() -> bool:
        calls.append(1)
        return True

    pieces = confirm_lines(
        twin, analysis, lines, suggest=False, judge_causal=True, keep_going=keep_going
    )
    assert len(calls) > len(lines)  # asked between pieces too, not only between lines
    assert whole.keys() == pieces.keys() == set(lines)
    for n in lines:
        for i, t in whole[n].tokens.items():
            assert abs(t.code_margin - pieces[n].tokens[i].code_margin) < 1e-3
            assert abs(t.causal_margin - pieces[n].tokens[i].causal_margin) < 1e-3
    # Told to stop inside the first line's prefix: nothing half-done comes back.
    budget = iter([True])  # yes before the first line, then no
    stopped = confirm_lines(
        twin, analysis, lines, suggest=False, keep_going=lambda: next(budget, False)
    )
    assert stopped == {}
