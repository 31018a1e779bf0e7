"""Two-sided verdicts carried across an edit: unchanged lines keep theirs, marked, at their
new line numbers and token indices; edited lines lose theirs."""

from __future__ import annotations

from lossmap.analysis import analyze_text
from lossmap.analysis.verdicts.confirm import confirm_top_lines
from lossmap.server.carried_verdicts import carry_verdicts

# The first tokens of a file count in no verdict (the model has seen nothing yet): a comment
# line takes them, so that every line below has one.
SOURCE = (
    "# " + "a comment " * 10 + "\n"
    "def f(x):\n    return x + 1\n\nfor i in range(10):\n    print(f(i), 'é')\n"
)


def confirmed(live, judge, text: str):
    analysis = analyze_text(live, text, "a.py")
    confirm_top_lines(judge, live, analysis, 0, extra_lines=(2, 3, 5, 6), suggest=False)
    return analysis


def test_unchanged_lines_keep_their_verdicts_at_their_new_places(fim_models):
    live, twin, _ = fim_models
    old = confirmed(live, twin, SOURCE)
    assert set(old.two_sided) == {2, 3, 5, 6}
    # One line inserted at the top, line 5 edited.
    new_text = "import os\n" + SOURCE.replace("range(10)", "range(12)")
    new = analyze_text(live, new_text, "a.py")
    carried = carry_verdicts(old, new)
    assert set(carried) == {3, 4, 7}  # old 2, 3, 6 moved down one line; old 5 was edited
    for old_line, new_line in ((2, 3), (3, 4), (6, 7)):
        before, after = old.two_sided[old_line], carried[new_line]
        assert after.carried and not before.carried and after.line == new_line
        assert after.combined == before.combined
        old_tokens = [old.tokens[i].text for i in sorted(before.tokens)]
        assert [new.tokens[i].text for i in sorted(after.tokens)] == old_tokens
        assert sorted(after.tokens.values(), key=id) == sorted(before.tokens.values(), key=id)
        if before.worst_token is not None:
            assert new.tokens[after.worst_token].text == old.tokens[before.worst_token].text


def test_nothing_is_carried_from_another_model(fim_models):
    live, twin, _ = fim_models
    old = confirmed(live, twin, SOURCE)
    assert carry_verdicts(old, analyze_text(twin, SOURCE, "a.py")) == {}
    assert len(carry_verdicts(old, analyze_text(live, SOURCE, "a.py"))) == 4
