"""Live and judge roles: configuration, tokenizer sharing, and a judge with other tokens."""

from __future__ import annotations

import dataclasses

import pytest

from lossmap.analysis import analyze_text
from lossmap.analysis import roles as roles_module
from lossmap.analysis.analyze import confirm_two_sided
from lossmap.analysis.errors import ModelSpecError
from lossmap.analysis.offline_models import LARGE_MODEL
from lossmap.analysis.roles import resolve_roles, share_tokenizer

SOURCE = "def f(x):\n    return x + 1\n\nfor i in range(10):\n    print(i)\n"


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


def test_share_tokenizer(fim_models):
    live, twin, other = fim_models
    assert share_tokenizer(live, live)
    assert share_tokenizer(live, twin)
    assert not share_tokenizer(live, other)


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
    confirm_two_sided(other, analysis, 3, live=live)
    assert any("tokenizes differently" in n for n in analysis.notes)
    assert len(analysis.two_sided) == 3
    by_line = {ln.line: ln for ln in analysis.lines}
    for n, ts in analysis.two_sided.items():
        assert ts.line_level and ts.tokens == {}
        assert ts.two_sided is not None and ts.two_sided >= 0
        assert ts.combined == pytest.approx(min(by_line[n].verdict, ts.two_sided))
    # Ranking still works: confirmed lines lead.
    assert {ln.line for ln in analysis.top_lines(3)} == set(analysis.two_sided)
