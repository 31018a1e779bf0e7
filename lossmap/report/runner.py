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
from ..analysis.batch_scoring import score_texts
from ..analysis.corpus import FileRecord, file_record
from ..analysis.errors import InputError
from ..analysis.languages import PROSE_LANGUAGES, language_for
from ..analysis.model_store import cache_root
from ..analysis.source import read_source

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


@dataclass
class CorpusRun:
    records: list[FileRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    cached: int = 0
    scored: int = 0


def corpus_files(paths: list[str]) -> Iterator[Path]:
    """Source files under ``paths`` with a code grammar, in a stable order.

    Hidden and dependency directories are skipped; so are documentation files (prose).
    Files named directly are always included.
    """
    for p in map(Path, paths):
        if p.is_file():
            yield p
            continue
        found = []
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and d[0] != ".")
            for name in filenames:
                lang = language_for(name)
                if lang is not None and lang not in PROSE_LANGUAGES:
                    found.append(Path(dirpath) / name)
        yield from sorted(found)


@dataclass(frozen=True)
class ModelIdentity:
    """What decides a record's numbers: the model (name, prepared path, dtype) and window."""

    name: str
    path: str
    dtype: str
    window: int | None

    @classmethod
    def of(cls, loaded: LoadedModel, window: int | None) -> ModelIdentity:
        return cls(loaded.name, str(loaded.path), str(loaded.dtype), window)

    def key(self) -> str:
        """A directory name for the records of this model and scoring setup."""
        ident = (
            f"{RECORD_VERSION}|{_code_versions()}|{self.name}|{self.path}|{self.dtype}"
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
) -> CorpusRun:
    """Records of every file under ``paths`` (in path order); cached records are reused.

    ``jobs`` > 1 scores that many windows per forward pass, files of similar length
    together (see :mod:`batch_scoring`); records are saved after each group of files.
    ``remote``: score elsewhere (Ray) instead of with ``loaded``; the identity names the
    cache. ``on_file(done, total, path)`` reports progress.
    """
    files = list(dict.fromkeys(str(p) for p in corpus_files(paths)))
    identity = remote[0] if remote else ModelIdentity.of(loaded, window)
    store = (cache_dir or cache_root() / "report") / identity.key()
    store.mkdir(parents=True, exist_ok=True)
    run = CorpusRun()
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
    try:
        record = FileRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):  # absent, or unreadable: score it again
        return None
    record.path = name  # the same content may live under another name
    return record


def _save(path: Path, record: FileRecord) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.to_json(), ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)  # never a half-written record
