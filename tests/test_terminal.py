"""The terminal view: tints on the right characters, and code never read as markup."""

from __future__ import annotations

from rich.console import Console

from lossmap.analysis import analyze_text
from lossmap.render.terminal import LEVEL_STYLES, heatmap, render_file


def tinted(text) -> list[str]:
    """The strings of a rich Text that carry one of the level styles."""
    levels = {s.split(" italic")[0] for s in LEVEL_STYLES}
    return [
        text.plain[span.start : span.end]
        for span in text.spans
        if str(span.style).split(" italic")[0] in levels
    ]


def test_heatmap_tints_land_on_tokens_with_crlf_and_control_characters(tiny):
    source = "a = 1\r\n" * 6 + "zebra_value = 2\r\n\x0cb = 3\r\n"
    analysis = analyze_text(tiny, source, "crlf.py")
    # Threshold 0: every non-layout token is tinted, so every tint must be a token's text.
    got = tinted(heatmap(analysis, threshold=0.0))
    expected = [
        t.text.strip().replace("\x0c", "\\x0c")
        for t, s in zip(analysis.tokens, analysis.syntax, strict=True)
        if s.kind != "layout"
    ]
    assert got == expected
    assert "zebra" in "".join(got)


def test_code_and_file_names_are_not_rich_markup(tiny, tmp_path):
    source = 'def f(xs, i, b):\n    print("[/b]")\n    return xs[i] + xs[b]\n'
    analysis = analyze_text(tiny, source, "[red]odd[/b].py")
    console = Console(record=True, width=200)
    render_file(console, analysis, threshold=0.0, top=5)
    out = console.export_text()
    assert "[red]odd[/b].py" in out
    assert 'print("[/b]")' in out and "return xs[i] + xs[b]" in out
