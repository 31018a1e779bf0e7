"""The judge's steady state on real files: what the editor shows once it has looked.

In the editor (``confirmCandidates``) the judge confirms, in the background, every line whose
causal verdict reaches the diagnostic threshold; once it has, a line is shown when its
combined verdict reaches the threshold (``ranking.shown``). Judging every candidate of the
67 ``--medium`` cases costs hours on 2 CPU cores, so this script takes the cases in a seeded
random order (a sample of whole files: the judge shares its KV cache between the lines of a
file, so whole files cost about half as much per line as lines drawn one by one) and, per
case, does what ``run.py --judge`` does: the live model scores both versions (``run.py``'s
cache), the judge confirms every candidate of the fixed file and the buggy file's top 20
candidates plus every candidate in the fixed function (``run.wanted_lines``).

The judge's verdicts are appended to ``judge_verdicts.jsonl`` (committed: case ids, line
and token numbers and bits; no code, no expected tokens), so the sample grows across
sessions and machines; the live model's scores are rebuilt from the mirrors when ``run.py``'s
git-ignored cache is gone (about 2 minutes per case).

Reported over the cases finished (both files), against the causal-only figures of the same
cases, for two ways to set the bar at T bits: A, the judge confirms lines from 10 bits and a
confirmed line is shown from T; B, the diagnostic threshold itself is T (candidates from T).

Usage::

    python benchmarks/realbugs/steady.py [--minutes M]   # judge, resumable
    python benchmarks/realbugs/steady.py --summary
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import run
from run import (
    DIAGNOSTIC_THRESHOLD,
    MAX_DIAGNOSTICS,
    UNCONFIRMED_EXTRA_BITS,
    choose,
    rank_of,
    read_cases,
    wanted_lines,
)

from lossmap.analysis import FileAnalysis, load_model
from lossmap.analysis.analyze import analyze_scored
from lossmap.analysis.verdicts.confirm import confirm
from lossmap.analysis.verdicts.ranking import final_verdict
from lossmap.analysis.verdicts.two_sided import TwoSidedLine, TwoSidedToken

LOG = run.HERE / "judge_verdicts.jsonl"
#: Seed of the case order.
SEED = 18
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
    """A logged record back as the judge's verdict (no expected tokens, no suggestion)."""
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
def case_order() -> list[tuple[run.RealBug, tuple[int, int] | None]]:
    """The 67 ``--medium`` cases in the sample's (seeded) order."""
    chosen = choose(read_cases(), False, None, medium=True)
    random.Random(SEED).shuffle(chosen)
    return chosen


def analyses(case) -> tuple[FileAnalysis, FileAnalysis] | None:
    """Both versions' analyses from ``run.py``'s cache; None when not scored."""
    buggy, fixed = run.load_cached(case, "buggy"), run.load_cached(case, "fixed")
    if buggy is None or fixed is None:
        return None
    return analyze_scored(buggy, case.path), analyze_scored(fixed, case.path)


def todo(log, case, span, version: str, analysis: FileAnalysis) -> list[int]:
    """The lines of one version the judge has yet to confirm."""
    done = log.get((case.id, version), {})
    return [n for n in wanted_lines(version, analysis, span) if n not in done]


def judge_cases(judge, live, runtime: str, minutes: float | None) -> None:
    """Score and judge the cases in order until all are done or ``minutes`` have passed."""
    log = read_log()
    t0 = time.perf_counter()
    for k, (case, span) in enumerate(case_order(), 1):
        if minutes is not None and time.perf_counter() - t0 > 60 * minutes:
            print(f"stopped after {minutes:g} minutes: run again to go on")
            return
        _b, _f, seconds = run.score_case(live, case)
        if seconds:
            print(f"[{k}] {case.id}: scored in {seconds:.0f} s", flush=True)
        b, f = analyses(case)
        for version, analysis in (("fixed", f), ("buggy", b)):
            lines = todo(log, case, span, version, analysis)
            for start in range(0, len(lines), 8):  # logged every 8 lines: a kill loses little
                t1 = time.perf_counter()
                found = confirm(judge, live, analysis, lines[start : start + 8], suggest=False)
                append_log(
                    [record(case.id, version, judge.name, runtime, v) for v in found.lines.values()]
                )
                log.setdefault((case.id, version), {}).update(found.lines)
                print(
                    f"[{k}] {case.id} {version}: {len(found.lines)} lines in"
                    f" {time.perf_counter() - t1:.0f} s",
                    flush=True,
                )


# -- the summary -------------------------------------------------------------------------
def finished(log) -> list[tuple]:
    """(case, span, buggy analysis, fixed analysis) of every case the judge finished, in the
    sample's order (its causal scores must be in ``run.py``'s cache)."""
    rows = []
    for case, span in case_order():
        if (case.id, "fixed") not in log:
            continue
        pair = analyses(case)
        if pair is None:
            print(f"{case.id}: judged, but the live model's scores are not cached: left out")
            continue
        b, f = pair
        if not todo(log, case, span, "fixed", f) and not todo(log, case, span, "buggy", b):
            rows.append((case, span, b, f))
    return rows


def shown_lines(analysis: FileAnalysis, verdicts, t: float, need_causal: float) -> list[int]:
    """The file's diagnostics in the steady state: confirmed lines whose causal verdict
    reaches ``need_causal`` (they were candidates) and combined verdict ``t``, most
    surprising first, at most ``MAX_DIAGNOSTICS``."""
    found = [
        (final_verdict(ln.verdict, verdicts[ln.line].combined), ln.line)
        for ln in analysis.lines
        if ln.line in verdicts
        and ln.verdict is not None
        and ln.verdict >= need_causal
        and verdicts[ln.line].combined is not None
        and verdicts[ln.line].combined >= t
    ]
    return [n for _v, n in sorted(found, reverse=True)[:MAX_DIAGNOSTICS]]


def causal_shown(analysis: FileAnalysis, t: float) -> list[int]:
    """The file's diagnostics before the judge has looked (causal verdict >= t + 8 bits)."""
    found = [
        (ln.verdict, ln.line)
        for ln in analysis.lines
        if ln.verdict is not None and ln.verdict >= t + UNCONFIRMED_EXTRA_BITS
    ]
    return [n for _v, n in sorted(found, reverse=True)[:MAX_DIAGNOSTICS]]


def n_lines(analysis: FileAnalysis) -> int:
    return analysis.scored.text.count("\n") + 1


def per_1000(counts: list[tuple[int, int]]) -> str:
    """Lines shown per 1,000 over (shown, lines) per file, with a 95 % interval from a
    bootstrap over the files (the sample is of whole files)."""
    total = 1000 * sum(s for s, _ in counts) / sum(n for _, n in counts)
    rng = random.Random(0)
    boot = []
    for _ in range(2000):
        pick = [rng.choice(counts) for _ in counts]
        boot.append(1000 * sum(s for s, _ in pick) / sum(n for _, n in pick))
    boot.sort()
    return f"{total:.1f} ({boot[49]:.1f}-{boot[1949]:.1f})"


def summarize() -> None:
    log = read_log()
    rows = finished(log)
    if not rows:
        print("no case finished yet: run without --summary first")
        return
    lines_total = sum(n_lines(f) for *_, f in rows)
    judged = sum(len(log[(c.id, v)]) for c, *_ in rows for v in ("fixed", "buggy"))
    print(
        f"{len(rows)} of 67 cases finished ({', '.join(c.id.split(':')[0] for c, *_ in rows)});"
        f" {lines_total:,} clean lines; {judged:,} lines judged"
    )
    print(
        "\nClean lines shown per 1,000 (95 % bootstrap interval over files) and real bugs"
        " published (a fixed line among the file's first 10 diagnostics), as T moves."
        " A: candidates from 10 bits, a confirmed line shown from T; B: the threshold is T."
        " Before the judge: causal verdict >= T + 8 (the shipped rule while it has not looked)."
    )
    print(
        "| T | A: clean per 1,000 | A: bugs published | B: clean per 1,000 | B: bugs published"
        " | before the judge: clean per 1,000 | bugs published |"
    )
    print("|---|---|---|---|---|---|---|")
    for t in THRESHOLDS:
        cells = []
        for need_causal in (DIAGNOSTIC_THRESHOLD, t):
            clean, bugs = [], 0
            for case, _span, b, f in rows:
                fixed_log, buggy_log = log[(case.id, "fixed")], log.get((case.id, "buggy"), {})
                clean.append((len(shown_lines(f, fixed_log, t, need_causal)), n_lines(f)))
                bugs += bool(
                    set(shown_lines(b, buggy_log, t, need_causal)) & set(case.target_lines)
                )
            cells += [per_1000(clean), f"{bugs}/{len(rows)}"]
        clean = [(len(causal_shown(f, t)), n_lines(f)) for *_, f in rows]
        bugs = sum(bool(set(causal_shown(b, t)) & set(c.target_lines)) for c, _s, b, _f in rows)
        cells += [per_1000(clean), f"{bugs}/{len(rows)}"]
        print(f"| {t:g} | " + " | ".join(cells) + " |")
    print("\nWithin the function the fix changed (steady state: candidates carry their combined")
    print("verdict, other lines their causal one), against the causal ranking:")
    for name, judged_rank in (("causal", False), ("judged", True)):
        ranks = []
        for case, span, b, _f in rows:
            verdicts = log.get((case.id, "buggy"), {}) if judged_rank else {}
            scores = {
                ln.line: final_verdict(
                    ln.verdict, verdicts[ln.line].combined if ln.line in verdicts else None
                )
                for ln in b.lines
                if ln.verdict is not None
            }
            ranks.append(rank_of(scores, set(case.target_lines), set(range(span[0], span[1] + 1))))
        found = [r for r in ranks if r is not None]
        top1 = sum(r == 1 for r in found) / len(ranks)
        top3 = sum(r <= 3 for r in found) / len(ranks)
        mrr = statistics.fmean([1 / r if r else 0.0 for r in ranks])
        print(f"- {name}: top-1 {top1:.0%}, top-3 {top3:.0%}, MRR {mrr:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--summary", action="store_true", help="report from the log, no model")
    ap.add_argument("--minutes", type=float, help="start no new case after this long")
    ap.add_argument("--judge", default="default-large")
    ap.add_argument("--model", default="default")
    ap.add_argument("--runtime", default="float32", help="as run.py's (its cache holds one)")
    args = ap.parse_args()
    if not args.summary:
        live = load_model(args.model, device="cpu", runtime=args.runtime)
        judge = load_model(args.judge, device="cpu", runtime=args.runtime, tokenizer_like=live)
        judge_cases(judge, live, args.runtime, args.minutes)
    summarize()


if __name__ == "__main__":
    main()
