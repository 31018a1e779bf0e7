"""The corpus's lines to look at: the most surprising lines of all files, confirmed by the
judge two-sided and ranked across the corpus by the same ranking as ``lossmap diff``'s
changed lines (``analysis.across_files``).

Each cached record keeps its file's causal top lines, so choosing candidates costs nothing;
only the files holding the chosen lines are scored again (whole, for context) and confirmed.
"""

from __future__ import annotations

from collections.abc import Callable

from ..analysis import LoadedModel
from ..analysis.across_files import FileLines, rank_across_files
from ..analysis.errors import InputError
from ..analysis.progress import ProgressFn
from ..analysis.syntax.source import read_source
from ..review.review import FileReview, Review, review_of
from .records import FileRecord

#: Lines confirmed by default (``lossmap report --confirm``).
DEFAULT_JUDGED_LINES = 10


def judge_corpus_lines(
    live: LoadedModel,
    judge: LoadedModel | None,
    records: list[FileRecord],
    n: int = DEFAULT_JUDGED_LINES,
    max_bytes: int | None = None,
    progress: Callable[[str], ProgressFn | None] | None = None,
) -> Review | None:
    """The ``n`` most surprising lines of ``records``, confirmed by ``judge`` (causal only
    when it is None); None when there is nothing to rank."""
    candidates = sorted(
        (-top["verdict"], record.path, top["line"])
        for record in records
        for top in record.top_lines
        if top.get("verdict") is not None
    )[:n]
    by_file: dict[str, list[int]] = {}
    for _, path, line in candidates:
        by_file.setdefault(path, []).append(line)
    files: list[FileLines] = []
    unreadable: dict[str, str] = {}
    for path, lines in by_file.items():
        try:
            text = read_source(path, max_bytes).text
        except InputError as err:  # changed or removed since it was scored
            unreadable[path] = str(err)
            continue
        files.append(FileLines(path, text, tuple(sorted(lines))))
    if not by_file:
        return None
    confirm = n if judge is not None else 0
    ranked = rank_across_files(live, files, confirm, judge=judge, progress=progress)
    reviews = [
        FileReview(path, "M", 0, error=unreadable[path])
        if path in unreadable
        else FileReview(path, "M", len(lines), ranked.analyses[path])
        for path, lines in by_file.items()
    ]
    return review_of(
        ranked,
        "the corpus's most surprising lines",
        live,
        (judge or live) if confirm else None,
        reviews,
        threshold=0.0,
        max_lines=n,
        unconfirmed_extra=0.0,  # the corpus's top n lines, whether the judge saw them or not
    )
