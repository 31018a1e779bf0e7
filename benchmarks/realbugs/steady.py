"""The judge's steady state on real files, estimated from a sample of its verdicts.

In the editor (``confirmCandidates``) the judge confirms, in the background, every line whose
causal verdict reaches the diagnostic threshold; once it has, a line is shown when its
combined verdict reaches the threshold (``ranking.shown``). Judging every candidate of the
67 ``--medium`` cases costs hours on 2 CPU cores (some 3,000 lines at about 10 s), so this
script measures the steady state from what it can afford, and keeps what it measured:

- **clean code**: a seeded random sample of the candidate lines of all fixed files (one pool,
  shuffled once: any prefix of the order is a uniform sample). False alarms per 1,000 clean
  lines in the steady state = (candidates per 1,000 lines) x (share of sampled candidates
  whose combined verdict reaches the threshold), with a 95 % Wilson interval;
- **real bugs**: the buggy files of the cases where a fixed line is a candidate (in any
  other case no fixed line can be shown, judge or not): the lines ``run.wanted_lines``
  gives (the file's top 20 candidates and every candidate in the fixed function), enough to
  know the file's first 10 diagnostics.

The two kinds of work alternate, so a short run yields both. The judge's verdicts are
appended to ``judge_verdicts.jsonl`` (committed: case ids, line and token numbers and bits,
no code), so the measurement accumulates across sessions and machines; the live model's
scores come from ``run.py``'s cache (rebuild it with ``run.py --medium`` first).

Usage::

    python benchmarks/realbugs/steady.py [--minutes M]   # judge, resumable
    python benchmarks/realbugs/steady.py --summary
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import run
from run import DIAGNOSTIC_THRESHOLD, MAX_DIAGNOSTICS, choose, read_cases, wanted_lines

from lossmap.analysis import load_model
from lossmap.analysis.analyze import analyze_scored
from lossmap.analysis.verdicts.confirm import candidate_lines, confirm
from lossmap.analysis.verdicts.ranking import final_verdict
from lossmap.analysis.verdicts.two_sided import TwoSidedLine, TwoSidedToken

LOG = run.HERE / "judge_verdicts.jsonl"
#: Seed of the clean-candidate sample's order.
SEED = 18
#: Fixed-file lines judged between two buggy files.
CLEAN_BATCH = 16
#: Thresholds of the summary (bits).
THRESHOLDS = (10, 12, 14, 16)


# -- the verdict log (numbers only) ------------------------------------------------------
def record(case_id: str, version: str, judge: str, runtime: str, v: TwoSidedLine) -> dict:
    """One judged line as a JSON record: numbers only (no expected token, no suggestion)."""
    return {
        "case": case_id,
        "version": version,
        "line": v.line,
        "judge": judge,
        "runtime": runtime,
        "two_sided": v.two_sided,
        "combined": v.combined,
        "worst_token": v.worst_token,
        "line_level": v.line_level,
        # token index, two-sided surprise, two-sided margin, the judge's causal margin
        "tokens": [
            [i, round(t.surprise, 4), round(t.code_margin, 4), _round(t.causal_margin)]
            for i, t in sorted(v.tokens.items())
        ],
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def verdict_of(r: dict) -> TwoSidedLine:
    tokens = {i: TwoSidedToken(s, m, None, c) for i, s, m, c in r["tokens"]}
    return TwoSidedLine(
        r["line"], tokens, r["two_sided"], r["combined"], r["worst_token"], None, r["line_level"]
    )


def read_log(path: Path = LOG) -> dict[tuple[str, str], dict[int, TwoSidedLine]]:
    """(case id, version) -> line -> the judge's verdict."""
    out: dict[tuple[str, str], dict[int, TwoSidedLine]] = {}
    if path.exists():
        for text in path.read_text().splitlines():
            r = json.loads(text)
            out.setdefault((r["case"], r["version"]), {})[r["line"]] = verdict_of(r)
    return out


def append_log(records: list[dict], path: Path = LOG) -> None:
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


# -- the work ----------------------------------------------------------------------------
class Rows:
    """(case, function span, buggy analysis, fixed analysis) of every case ``run.py`` has
    scored so far, re-read on ``refresh`` (``run.py`` may be scoring more meanwhile)."""

    def __init__(self, chosen) -> None:
        self.chosen = chosen
        self._done: dict[str, tuple] = {}

    def refresh(self) -> list[tuple]:
        for case, span in self.chosen:
            if case.id in self._done:
                continue
            buggy, fixed = run.load_cached(case, "buggy"), run.load_cached(case, "fixed")
            if buggy is not None and fixed is not None:
                b, f = analyze_scored(buggy, case.path), analyze_scored(fixed, case.path)
                self._done[case.id] = (case, span, b, f)
        return [self._done[c.id] for c, _ in self.chosen if c.id in self._done]


def sample_key(case_id: str, line: int) -> str:
    """A clean candidate's place in the sample's order: a hash, so that the order of any set
    of cases is the same as in the whole pool (cases scored later slot in)."""
    return hashlib.sha256(f"{SEED}:{case_id}:{line}".encode()).hexdigest()


def clean_order(rows) -> list[tuple[int, int]]:
    """Every candidate line of the fixed files as (row index, line), in the sample's order."""
    pool = [
        (k, n) for k, (*_, f) in enumerate(rows) for n in candidate_lines(f, DIAGNOSTIC_THRESHOLD)
    ]
    return sorted(pool, key=lambda kn: sample_key(rows[kn[0]][0].id, kn[1]))


def bug_cases(rows) -> list[int]:
    """Rows whose buggy file has a fixed line among its candidates."""
    out = []
    for k, (case, _span, b, _f) in enumerate(rows):
        if set(case.target_lines) & set(candidate_lines(b, DIAGNOSTIC_THRESHOLD)):
            out.append(k)
    return out


def buggy_todo(rows, log, k: int) -> list[int]:
    """The lines of row ``k``'s buggy file the judge has yet to confirm."""
    case, span, b, _f = rows[k]
    done = log.get((case.id, "buggy"), {})
    return [n for n in wanted_lines("buggy", b, span) if n not in done]


def next_work(rows, log, clean_turn: bool) -> tuple[int, str, list[int]] | None:
    """(row, version, lines) to judge next: a buggy file or the next lines of the clean
    sample (the first not yet judged), alternately as ``clean_turn`` says; None: all done."""
    buggy = next(
        ((k, "buggy", t) for k in bug_cases(rows) if (t := buggy_todo(rows, log, k))), None
    )
    if buggy is not None and not clean_turn:
        return buggy
    batch = [
        (k, n) for k, n in clean_order(rows) if n not in log.get((rows[k][0].id, "fixed"), {})
    ][:CLEAN_BATCH]
    if not batch:
        return buggy
    k = batch[0][0]  # one file per step: the first one's lines of the batch
    return k, "fixed", sorted(n for j, n in batch if j == k)


def judge_all(rows_source: Rows, judge, live, runtime: str, minutes: float | None) -> None:
    log = read_log()
    t0 = time.perf_counter()
    judged, clean_turn = 0, False
    while minutes is None or time.perf_counter() - t0 < 60 * minutes:
        rows = rows_source.refresh()
        step = next_work(rows, log, clean_turn)
        if step is None:
            break
        clean_turn = not clean_turn
        k, version, lines = step
        case, _span, b, f = rows[k]
        analysis = b if version == "buggy" else f
        for start in range(0, len(lines), 8):  # appended every 8 lines: a kill loses little
            t1 = time.perf_counter()
            found = confirm(judge, live, analysis, lines[start : start + 8], suggest=False)
            records = [
                record(case.id, version, judge.name, runtime, v) for v in found.lines.values()
            ]
            append_log(records)
            log.setdefault((case.id, version), {}).update(found.lines)
            judged += len(found.lines)
            print(
                f"{case.id} {version}: {len(found.lines)} lines in"
                f" {time.perf_counter() - t1:.0f} s ({judged} this run)",
                flush=True,
            )


# -- the summary -------------------------------------------------------------------------
def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def summarize(rows) -> None:
    log = read_log()
    n_clean = sum(f.scored.text.count("\n") + 1 for *_, f in rows)
    pool = clean_order(rows)
    per_1000 = 1000 * len(pool) / n_clean
    fixed_log = {k: log.get((rows[k][0].id, "fixed"), {}) for k in range(len(rows))}
    causal = [{ln.line: ln.verdict for ln in f.lines} for *_, f in rows]
    # The uniform sample: the order's prefix up to its first line not judged yet.
    judged: list[tuple[float, float | None]] = []  # (causal verdict, combined verdict)
    for k, n in pool:
        if n not in fixed_log[k]:
            break
        judged.append((causal[k][n], fixed_log[k][n].combined))
    print(
        f"{len(rows)} cases, {n_clean:,} clean lines; {len(pool):,} candidates (causal >="
        f" {DIAGNOSTIC_THRESHOLD:g} bits: {per_1000:.1f} per 1,000); sample judged so far:"
        f" {len(judged)}"
    )
    print(
        "\nClean code, the steady state (every candidate confirmed). Two ways to move the"
        " bar: the judge confirms lines from 10 bits and a confirmed line is shown from T"
        " (A), or the diagnostic threshold itself is T (B: candidates from T, shown from T)."
    )
    print("| T | A: clean lines shown per 1,000 (95 %) | B: clean lines shown per 1,000 (95 %) |")
    print("|---|---|---|")
    for t in THRESHOLDS:
        cells = []
        for need_causal in (DIAGNOSTIC_THRESHOLD, t):
            hits = sum(c >= need_causal and v is not None and v >= t for c, v in judged)
            lo, hi = wilson(hits, len(judged))
            share = hits / max(len(judged), 1)
            cells.append(
                f"{per_1000 * share:.1f} ({per_1000 * lo:.1f}-{per_1000 * hi:.1f}),"
                f" {hits}/{len(judged)} judged"
            )
        print(f"| {t:g} | " + " | ".join(cells) + " |")
    candidates = bug_cases(rows)
    done = [k for k in candidates if not buggy_todo(rows, log, k)]
    settled = len(rows) - len(candidates) + len(done)
    print(
        f"\nReal bugs, the steady state: {len(candidates)} of {len(rows)} cases have a fixed"
        f" line among the buggy file's candidates (in the others no fixed line can be shown);"
        f" the judge finished {len(done)} of them. Bugs published, of the {settled} cases"
        " settled:"
    )
    print("| T | A | B |")
    print("|---|---|---|")
    for t in THRESHOLDS:
        cells = []
        for need_causal in (DIAGNOSTIC_THRESHOLD, t):
            hits = 0
            for k in done:
                case, _span, b, _f = rows[k]
                verdicts = log[(case.id, "buggy")]
                shown = sorted(
                    (
                        (final_verdict(ln.verdict, verdicts[ln.line].combined), ln.line)
                        for ln in b.lines
                        if ln.line in verdicts
                        and ln.verdict >= need_causal
                        and verdicts[ln.line].combined is not None
                        and verdicts[ln.line].combined >= t
                    ),
                    reverse=True,
                )[:MAX_DIAGNOSTICS]
                hits += any(n in case.target_lines for _v, n in shown)
            cells.append(f"{hits}/{settled} = {hits / max(settled, 1):.0%}")
        print(f"| {t:g} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--summary", action="store_true", help="report from the log, no judge")
    ap.add_argument("--minutes", type=float, help="stop starting work after this long")
    ap.add_argument("--judge", default="default-large")
    ap.add_argument("--model", default="default")
    ap.add_argument("--runtime", default="float32", help="as run.py's (its cache holds one)")
    args = ap.parse_args()
    rows = Rows(choose(read_cases(), False, None, medium=True))
    if not args.summary:
        live = load_model(args.model, device="cpu", runtime=args.runtime)
        judge = load_model(args.judge, device="cpu", runtime=args.runtime, tokenizer_like=live)
        judge_all(rows, judge, live, args.runtime, args.minutes)
    summarize(rows.refresh())


if __name__ == "__main__":
    main()
