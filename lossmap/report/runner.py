"""Score a corpus file by file, caching each file's record by content hash and model.

A run that stops (Ctrl-C, a crash, a closed laptop) is resumed by running it again: files
whose content and model match a cached record are not scored again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .. import __version__
from ..analysis import LoadedModel, analyze_text
from ..analysis.analyze import analyze_scored
from ..analysis.errors import InputError
from ..analysis.models.store import cache_root
from ..analysis.scoring.batch import score_texts
from ..analysis.syntax.languages import PROSE_LANGUAGES, language_for
from ..analysis.syntax.source import read_source
from .records import FileRecord, file_record
from .safe_files import write_replacing

#: Directories never walked into: version control, dependencies, build output, caches.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "build", "dist"}
)
#: Bump when FileRecord changes shape: older cached records are then scored again.
RECORD_VERSION = 2


def _code_versions() -> str:
    """What else decides a record: lossmap (scoring, aggregation) and the grammars (node
    types); an upgrade of either scores files again rather than mixing old records in."""
    try:
        grammars = metadata.version("tree-sitter-language-pack")
    except metadata.PackageNotFoundError:
        grammars = "?"
    return f"lossmap {__version__}, grammars {grammars}"


#: Why a symbolic link met in a walk is not read (the words ``lossmap diff`` uses).
LINK_SKIPPED = "symbolic link, skipped"


@dataclass
class CorpusRun:
    records: list[FileRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    cached: int = 0
    scored: int = 0
    links: list[str] = field(default_factory=list)  # skipped on purpose: not followed

    @property
    def failed(self) -> list[tuple[str, str]]:
        """The skipped files that could not be read (links are skipped by choice)."""
        links = set(self.links)
        return [(path, why) for path, why in self.skipped if path not in links]


@dataclass
class CorpusWalk:
    """What a walk found: source files, and the symbolic links it did not follow."""

    files: list[Path] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def _identity(path: str | Path) -> tuple[int, int] | None:
    """Which directory ``path`` is (device, inode), however it is spelled; None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_link(path: str) -> bool:
    # A Windows junction redirects a directory just as a link does.
    return os.path.islink(path) or getattr(os.path, "isjunction", lambda _: False)(path)


def walk_corpus(paths: list[str], exclude: tuple[Path, ...] = ()) -> CorpusWalk:
    """Source files under ``paths`` with a code grammar, in a stable order.

    Hidden and dependency directories are skipped; so are documentation files (prose) and
    the directories in ``exclude`` (the report's own output, the cache). Symbolic links met
    in the walk, to files or directories, are listed in ``links`` and never followed: their
    target may be anything (``x.py -> ~/.ssh/id_rsa``). Paths named directly are the user's
    choice: a file is always included, a directory walked, link or not.
    """
    excluded = {i for i in map(_identity, exclude) if i is not None}
    walk = CorpusWalk()
    for p in map(Path, paths):
        if p.is_file():
            walk.files.append(p)
            continue
        found = []
        for dirpath, dirnames, filenames in os.walk(p):
            kept = []
            for d in sorted(dirnames):
                if d in SKIP_DIRS or d[0] == ".":
                    continue
                full = os.path.join(dirpath, d)
                if _is_link(full):
                    walk.links.append(full)
                elif not excluded or _identity(full) not in excluded:
                    kept.append(d)
            dirnames[:] = kept
            for name in sorted(filenames):
                lang = language_for(name)
                if lang is None or lang in PROSE_LANGUAGES:
                    continue
                full = os.path.join(dirpath, name)
                if _is_link(full):
                    walk.links.append(full)
                else:
                    found.append(Path(full))
        walk.files += sorted(found)
    return walk


def corpus_files(paths: list[str], exclude: tuple[Path, ...] = ()) -> Iterator[Path]:
    """The source files of :func:`walk_corpus` (symbolic links left out)."""
    yield from walk_corpus(paths, exclude).files


@dataclass(frozen=True)
class ModelIdentity:
    """What decides a record's numbers: the model (name, prepared path, precision) and window."""

    name: str
    path: str
    precision: str
    window: int | None

    @classmethod
    def of(cls, loaded: LoadedModel, window: int | None) -> ModelIdentity:
        return cls(loaded.name, str(loaded.path), loaded.precision, window)

    def key(self) -> str:
        """A directory name for the records of this model and scoring setup."""
        ident = (
            f"{RECORD_VERSION}|{_code_versions()}|{self.name}|{self.path}|{self.precision}"
            f"|{self.window}"
        )
        digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
        return f"{self.name.replace('/', '--')[:40]}-{digest}"


#: Scores (name, text) pairs elsewhere and calls back with each record's JSON.
RemoteScorer = Callable[[list[tuple[str, str]], Callable[[str, dict], None]], None]


def score_corpus(
    loaded: LoadedModel | None,
    paths: list[str],
    window: int | None = None,
    max_bytes: int | None = None,
    cache_dir: Path | None = None,
    on_file: Callable[[int, int, str], None] | None = None,
    jobs: int = 1,
    remote: tuple[ModelIdentity, RemoteScorer] | None = None,
    exclude: tuple[Path, ...] = (),
) -> CorpusRun:
    """Records of every file under ``paths`` (in path order); cached records are reused.

    The walk is :func:`walk_corpus`'s, leaving out ``exclude`` (the report's output) and
    lossmap's own cache: a run never scores its own report or records. Symbolic links are
    listed in ``skipped`` (and ``links``), not read.

    ``jobs`` > 1 scores that many windows per forward pass, files of similar length
    together (see :mod:`batch_scoring`); records are saved after each group of files.
    ``remote``: score elsewhere (Ray) instead of with ``loaded``; the identity names the
    cache. ``on_file(done, total, path)`` reports progress.
    """
    identity = remote[0] if remote else ModelIdentity.of(loaded, window)
    records_dir = cache_dir or cache_root() / "report"
    walk = walk_corpus(paths, (*exclude, cache_root(), records_dir))
    files = list(dict.fromkeys(str(p) for p in walk.files))
    store = records_dir / identity.key()
    store.mkdir(parents=True, exist_ok=True)
    run = CorpusRun(links=list(dict.fromkeys(walk.links)))  # a path given twice: once
    run.skipped += [(link, f"{link}: {LINK_SKIPPED}") for link in run.links]
    found: dict[str, FileRecord] = {}
    todo: list[tuple[str, str, Path]] = []  # (name, text, cache file)
    for name in files:
        try:
            source = read_source(name, max_bytes)
        except InputError as err:
            run.skipped.append((name, str(err)))
            continue
        digest = hashlib.sha256(source.text.encode("utf-8", errors="surrogatepass")).hexdigest()
        cached = store / f"{digest}.json"
        record = _load(cached, name)
        if record is None:
            todo.append((name, source.text, cached))
        else:
            found[name] = record
            run.cached += 1
    done = len(found)
    if remote is not None:
        cache_of = {name: cached for name, _, cached in todo}

        def finished(name: str, data: dict) -> None:
            nonlocal done
            record = FileRecord.from_json(data)
            _save(cache_of[name], record)
            found[name] = record
            run.scored += 1
            done += 1
            if on_file:
                on_file(done, len(files), name)

        remote[1]([(name, text) for name, text, _ in todo], finished)
        todo = []
    todo.sort(key=lambda job: len(job[1]))  # similar lengths share a batch
    group = max(1, jobs) * 4
    for g in range(0, len(todo), group):
        part = todo[g : g + group]
        if jobs > 1:
            scored = score_texts(loaded, [text for _, text, _ in part], batch=jobs, window=window)
            analyses = [
                analyze_scored(s, name) for s, (name, _, _) in zip(scored, part, strict=True)
            ]
        else:
            analyses = [
                analyze_text(loaded, text, name=name, window=window) for name, text, _ in part
            ]
        for analysis, (name, _, cached) in zip(analyses, part, strict=True):
            record = file_record(analysis, name)
            _save(cached, record)
            found[name] = record
            run.scored += 1
            done += 1
            if on_file:
                on_file(done, len(files), name)
    run.records = [found[name] for name in files if name in found]
    return run


def _load(path: Path, name: str) -> FileRecord | None:
    if path.is_symlink():  # not a record this cache wrote: score the file again, replace it
        return None
    try:
        record = FileRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):  # absent, or unreadable: score it again
        return None
    record.path = name  # the same content may live under another name
    return record


def _save(path: Path, record: FileRecord) -> None:
    # Never a half-written record, and never one written through a link.
    write_replacing(path, json.dumps(record.to_json(), ensure_ascii=False))
