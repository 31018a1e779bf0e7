"""The corpus's lines to look at: the most surprising lines of all files, confirmed by the
judge two-sided and ranked across the corpus the way ``lossmap diff`` ranks changed lines.

Each cached record keeps its file's causal top lines, so choosing candidates costs nothing;
only the files holding the chosen lines are scored again (whole, for context) and confirmed.
"""

from __future__ import annotations

from collections.abc import Callable

from ..analysis import LoadedModel
from ..analysis.errors import InputError
from ..analysis.progress import ProgressFn
from ..analysis.syntax.source import read_source
from ..review.git_changes import ChangedFile
from ..review.review import Review, review_changes
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
    files = []
    for path, lines in by_file.items():
        try:
            text = read_source(path, max_bytes).text
        except InputError as err:  # changed or removed since it was scored
            files.append(ChangedFile(path, "M", (), None, str(err)))
            continue
        files.append(ChangedFile(path, "M", tuple(sorted(lines)), text))
    if not files:
        return None
    return review_changes(
        live,
        "the corpus's most surprising lines",
        files,
        confirm=n if judge is not None else 0,
        threshold=0.0,
        max_lines=n,
        progress=progress,
        judge=judge,
    )
