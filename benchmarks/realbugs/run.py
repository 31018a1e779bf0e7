"""Real bugs and clean code in whole files: what a user of lossmap would be shown.

For each BugsInPy case (``cases.py``: a file a real fix changed, in nine projects) the live
model scores the **buggy** file whole, then the **fixed** file (incrementally, from the first
token that differs). The buggy file asks whether the fixed lines stand out; the fixed file,
nearly clean code, counts false alarms. Optionally (``--judge``) the judge confirms every
line a rule would publish, as the server does with ``confirmCandidates``.

Model outputs are cached per case under ``cache/`` (git-ignored: it holds tokens of the
projects' code), so the run resumes where it stopped and the summary re-derives every rule's
verdicts with the product's own code (``analyze_scored``, the ranking rules) without running a
model again. Nothing of the projects' code is committed: ``cases.jsonl`` holds ids, line
numbers and hashes; the text is read from the git mirrors (MIRRORS.md) on the fly.

Reported per rule (``--summary``), with today's rule and the baselines side by side:

- real bugs, within the function the fix changed (cases whose target lines lie in one
  function): top-1, top-3 and MRR of the best-ranked target line;
- real bugs, in the whole file: whether a target line is published (its verdict reaches the
  diagnostic threshold and it is among the first ``maxDiagnostics`` = 10 diagnostics);
- clean code (the fixed files): lines at or above the threshold per 1,000 lines;
- the trade-off as the threshold moves (``--svg``: an SVG plot).

Usage::

    python benchmarks/realbugs/run.py [--quick | --medium | --cases N] [--judge]  # resumable
    python benchmarks/realbugs/run.py --summary [--quick | --medium | --cases N] [--svg FILE]

``--quick``: 17 cases (two per project, files up to 1,500 lines), about 25 minutes of the
0.5B on 2 CPU cores for both versions; ``--medium``: all 67 cases whose fixed lines lie in one
function, in files up to 1,500 lines (the quick ones first), about 80 minutes.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import pickle
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from cases import RealBug, buggy_text, fixed_text  # noqa: E402

from lossmap.analysis import FileAnalysis, load_model  # noqa: E402
from lossmap.analysis.analyze import analyze_scored  # noqa: E402
from lossmap.analysis.scoring.document_scorer import DocumentScorer  # noqa: E402
from lossmap.analysis.scoring.tokens import ScoredText  # noqa: E402
from lossmap.analysis.syntax.align import CODE  # noqa: E402
from lossmap.analysis.verdicts.confirm import candidate_lines, confirm  # noqa: E402
from lossmap.analysis.verdicts.levels import (  # noqa: E402
    DIAGNOSTIC_THRESHOLD,
    UNCONFIRMED_EXTRA_BITS,
)

sys.path.insert(0, str(HERE.parent / "ranker"))
from features import analysis_features  # noqa: E402
from ranker import load_ranker, ranker_from_json  # noqa: E402

from lossmap.analysis.verdicts.ranking import final_verdict  # noqa: E402
from lossmap.analysis.verdicts.two_sided import token_verdict  # noqa: E402

CACHE = HERE / "cache"
MAX_DIAGNOSTICS = 10  # the server's default maxDiagnostics


# -- cases ------------------------------------------------------------------------------
def read_cases() -> list[tuple[RealBug, tuple[int, int] | None]]:
    """The cases of ``cases.jsonl`` with the function span of their target lines."""
    out = []
    fields = set(RealBug.__dataclass_fields__)
    for line in (HERE / "cases.jsonl").read_text().splitlines():
        record = json.loads(line)
        span = record.get("function_span")
        case = RealBug(**{k: v for k, v in record.items() if k in fields})
        case = RealBug(**{**case.__dict__, "target_lines": tuple(case.target_lines)})
        out.append((case, tuple(span) if span else None))
    return out


def choose(cases, quick: bool, count: int | None, medium: bool = False):
    """``--quick``: two cases per project whose targets lie in one function, files of at most
    1,500 lines, chosen by a fixed seed; ``medium``: every such case (the quick ones among
    them); ``count``: the first N of a seeded shuffle."""
    rng = random.Random(18)
    if medium:
        pool = [(c, s) for c, s in cases if s and c.n_lines <= 1500]
        quick_ones = choose(cases, True, None)
        return quick_ones + [p for p in pool if p not in quick_ones]
    if quick:
        chosen = []
        for project in dict.fromkeys(c.project for c, _ in cases):
            pool = [(c, s) for c, s in cases if c.project == project and s and c.n_lines <= 1500]
            chosen += rng.sample(pool, min(2, len(pool)))
        return chosen
    order = list(cases)
    rng.shuffle(order)
    return order[:count] if count else order


# -- model outputs, cached ---------------------------------------------------------------
def _key(case: RealBug) -> str:
    return case.id.replace("/", "_").replace(":", "__")


def cache_path(case: RealBug, version: str) -> Path:
    return CACHE / f"{_key(case)}.{version}.pkl.gz"


def load_cached(case: RealBug, version: str):
    path = cache_path(case, version)
    if not path.exists():
        return None
    with gzip.open(path, "rb") as f:
        return pickle.load(f)


def store(case: RealBug, version: str, value) -> None:
    CACHE.mkdir(exist_ok=True)
    tmp = cache_path(case, version).with_suffix(".tmp")
    with gzip.open(tmp, "wb") as f:
        pickle.dump(value, f)
    tmp.replace(cache_path(case, version))  # whole or absent: a killed run leaves no half file


#: Buggy files: the judge confirms this many of the file's top candidates (and every candidate
#: in the fixed function); enough to know the file's first 10 diagnostics after the judge
#: unless it clears most of them.
BUGGY_TOP_CANDIDATES = 20


def wanted_lines(version: str, analysis: FileAnalysis, span) -> list[int]:
    """The lines the judge confirms in one version (see ``judge_case``)."""
    wanted = candidate_lines(analysis, DIAGNOSTIC_THRESHOLD)
    if version == "buggy":
        inside = [n for n in wanted if span and span[0] <= n <= span[1]]
        wanted = sorted({*wanted[:BUGGY_TOP_CANDIDATES], *inside})
    return wanted


def judge_case(
    judge, live, case: RealBug, version: str, analysis: FileAnalysis, span=None
) -> float:
    """Confirm (cached, resumable) the lines of one version whose causal verdict reaches the
    diagnostic threshold, as the server does with ``confirmCandidates`` (the fixed file: all
    of them; the buggy file: the top ``BUGGY_TOP_CANDIDATES`` and those inside ``span``);
    attach the verdicts to ``analysis``; the seconds the judge ran."""
    verdicts = load_cached(case, f"{version}.judge") or {}
    todo = [n for n in wanted_lines(version, analysis, span) if n not in verdicts]
    t0 = time.perf_counter()
    for start in range(0, len(todo), 8):  # stored every 8 lines: a killed run loses little
        found = confirm(judge, live, analysis, todo[start : start + 8], suggest=False)
        verdicts.update(found.lines)
        store(case, f"{version}.judge", verdicts)
    analysis.two_sided = dict(verdicts)
    analysis.judge = judge.name if hasattr(judge, "name") else None
    return time.perf_counter() - t0 if todo else 0.0


def judged(row) -> bool:
    """Whether the judge has confirmed every line it should in both versions of a row."""
    case, span, buggy, fixed = row
    return all(
        set(wanted_lines(version, analysis, span)) <= set(analysis.two_sided)
        for version, analysis in (("buggy", buggy), ("fixed", fixed))
    )


def attach_judged(case: RealBug, version: str, analysis: FileAnalysis) -> FileAnalysis:
    """``analysis`` with the cached verdicts of the judge, when there are any."""
    verdicts = load_cached(case, f"{version}.judge")
    if verdicts:
        analysis.two_sided = dict(verdicts)
    return analysis


def score_case(live, case: RealBug) -> tuple[ScoredText, ScoredText, float]:
    """Both versions' scores (cached); the seconds the model ran for them."""
    buggy, fixed = load_cached(case, "buggy"), load_cached(case, "fixed")
    if buggy is not None and fixed is not None:
        return buggy, fixed, 0.0
    t0 = time.perf_counter()
    scorer = DocumentScorer(live, top_k=5)
    buggy = scorer.score(buggy_text(case))
    fixed = scorer.score(fixed_text(case))  # from the first token that differs
    store(case, "buggy", buggy)
    store(case, "fixed", fixed)
    return buggy, fixed, time.perf_counter() - t0


# -- rules: a score per line, higher = more suspicious ----------------------------------
@dataclass(frozen=True)
class Rule:
    """A line ranking: ``score(analysis)`` gives line -> score (None: no verdict)."""

    name: str
    score: Callable[[FileAnalysis], dict[int, float]]
    thresholded: bool = True  # its scores are bits of margin, comparable to the threshold
    plotted: bool = False  # drawn in the trade-off plot


def code_lines(analysis: FileAnalysis) -> list[int]:
    """The lines holding a scored code token, in order."""
    syntax, tokens = analysis.syntax, analysis.tokens
    return [
        ln.line
        for ln in analysis.lines
        if any(
            syntax[i].kind == CODE and tokens[i].code_margin is not None for i in ln.token_indices
        )
    ]


def longest_line(analysis: FileAnalysis) -> dict[int, float]:
    spans = {ln.line: ln for ln in analysis.lines}
    return {n: float(spans[n].end - spans[n].start) for n in code_lines(analysis)}


def novel_tokens(analysis: FileAnalysis) -> set[int]:
    """Tokens inside the first occurrence of a word (``\\w+``) in the file: a name the code
    before could not have shown the model."""
    text = analysis.scored.text
    first: dict[str, int] = {}
    words = []
    for m in re.finditer(r"\w+", text):
        first.setdefault(m.group(), m.start())
        words.append((m.start(), m.end(), m.group()))
    starts = [w[0] for w in words]
    out = set()
    for tok in analysis.tokens:
        a = tok.core_span[0]
        k = bisect.bisect_right(starts, a) - 1
        if k >= 0 and words[k][0] <= a < words[k][1] and first[words[k][2]] == words[k][0]:
            out.add(tok.index)
    return out


def token_rule(
    role_discount: float | None = 0.0,
    min_context: int = 0,
    judged: bool = False,
    novel_discount: float = 0.0,
) -> Callable[[FileAnalysis], dict[int, float]]:
    """Line score = max over code tokens of the causal margin, where names being bound or
    imported count ``role_discount`` bits less (None: not at all) and tokens with fewer than
    ``min_context`` tokens of the file before them do not count. ``judged``: on lines the
    judge confirmed, a token's margin is its two-sided token verdict (``token_verdict``)."""

    def score(analysis: FileAnalysis) -> dict[int, float]:
        tokens, syntax = analysis.tokens, analysis.syntax
        out: dict[int, float] = {}
        novel = novel_tokens(analysis) if novel_discount else set()
        for ln in analysis.lines:
            best = None
            confirmed = analysis.two_sided.get(ln.line) if judged else None
            for i in ln.token_indices:
                m = tokens[i].code_margin
                # Token indices start after a BOS token, as in ``lines.counted_margin``.
                if m is None or syntax[i].kind != CODE or i < min_context:
                    continue
                if confirmed is not None and i in confirmed.tokens:
                    m = token_verdict(tokens[i], confirmed.tokens[i])
                if syntax[i].role is not None:
                    if role_discount is None:
                        continue
                    m -= role_discount
                elif i in novel:
                    m -= novel_discount
                best = m if best is None else max(best, m)
            if best is not None:
                out[ln.line] = best
        return out

    return score


def shipped_causal(analysis: FileAnalysis) -> dict[int, float]:
    """The product's causal line verdicts (``lines.counted_margin``)."""
    return {ln.line: ln.verdict for ln in analysis.lines if ln.verdict is not None}


def shipped_judged(analysis: FileAnalysis) -> dict[int, float]:
    """The product's line verdicts once the judge looked (``ranking.final_verdict``)."""
    confirmed = analysis.two_sided
    return {
        ln.line: final_verdict(
            ln.verdict, confirmed[ln.line].combined if ln.line in confirmed else None
        )
        for ln in analysis.lines
        if ln.verdict is not None
    }


def shipped_shown(analysis: FileAnalysis) -> dict[int, float]:
    """What the product shows, as a score against the threshold (``ranking.shown``): the
    judge's combined verdict where it looked, else the causal verdict less
    ``UNCONFIRMED_EXTRA_BITS``."""
    confirmed = analysis.two_sided
    return {
        ln.line: (
            confirmed[ln.line].combined
            if ln.line in confirmed and confirmed[ln.line].combined is not None
            else ln.verdict - UNCONFIRMED_EXTRA_BITS
        )
        for ln in analysis.lines
        if ln.verdict is not None
    }


def ranker_rule(judged: bool = False) -> Callable[[FileAnalysis], dict[int, float]]:
    """The experimental learned line ranker's verdicts (``benchmarks/ranker``; ``RANKER``:
    the one the run evaluates, ``--ranker FILE``; without one the rule gives no verdicts).
    ``judged``: a line the judge confirmed counts at most its combined verdict (a line the
    judge cleared sinks)."""

    def score(analysis: FileAnalysis) -> dict[int, float]:
        ranker = RANKER or load_ranker()
        if ranker is None:
            return {}
        out = {n: ranker.verdict(f.values) for n, f in analysis_features(analysis).items()}
        if judged:
            for n, confirmed in analysis.two_sided.items():
                if n in out and confirmed.combined is not None:
                    out[n] = min(out[n], confirmed.combined)
        return out

    return score


#: The ranker a run evaluates (``--ranker FILE``); None: ``benchmarks/ranker/ranker.json``.
RANKER = None

RULES = [
    Rule("max code margin (before issue 18)", token_rule(0.0, 0), plotted=True),
    Rule("bound/imported -4 bits", token_rule(4.0, 0)),
    Rule("bound/imported -8 bits", token_rule(8.0, 0)),
    Rule("bound/imported not counted", token_rule(None, 0)),
    Rule("-8, first 16 tokens not counted", token_rule(8.0, 16)),
    Rule("shipped, causal (line verdicts)", shipped_causal, plotted=True),
    Rule("-8, first 16, first use of a word -8", token_rule(8.0, 16, novel_discount=8.0)),
    Rule("judged: shipped (ranking.final_verdict)", shipped_judged),
    Rule("shown: judged, else causal - 8 (shipped)", shipped_shown, plotted=True),
    Rule("learned ranker (causal)", ranker_rule(), plotted=True),
    Rule("judged: learned ranker", ranker_rule(judged=True)),
    Rule("longest line", longest_line, thresholded=False),
]


# -- metrics ----------------------------------------------------------------------------
def rank_of(scores: dict[int, float], targets: set[int], among: set[int] | None = None):
    """1-based rank of the best-ranked target among the lines (``among``: only these);
    None when no target line has a score. Ties count against the target."""
    pool = {n: s for n, s in scores.items() if among is None or n in among}
    hit = [pool[n] for n in targets if n in pool]
    if not hit:
        return None
    best = max(hit)
    return 1 + sum(s >= best for n, s in pool.items() if n not in targets)


def published(scores: dict[int, float], targets: set[int], threshold: float) -> bool:
    """A target line is among the file's diagnostics: at or above ``threshold`` and among
    the first ``MAX_DIAGNOSTICS`` lines that are."""
    shown = sorted((s, n) for n, s in scores.items() if s >= threshold)[::-1][:MAX_DIAGNOSTICS]
    return any(n in targets for _, n in shown)


def summarize(chosen, svg: str | None) -> None:
    """The tables (all cases; then only the cases the judge finished, when that differs) and
    the trade-off plot."""
    rows = load_rows(chosen)
    if not rows:
        print("no scored cases yet: run without --summary first")
        return
    done = [r for r in rows if judged(r)]
    if len(done) < len(rows):
        print_table(rows, [r for r in RULES if not r.name.startswith("judged")])
        if done:
            print(f"\nThe {len(done)} cases the judge finished:")
            print_table(done, RULES)
    else:
        print_table(rows, RULES)
    target = done or rows
    print("\nAs the threshold moves (clean lines flagged per 1,000 / share of bugs published):")
    shown = [r for r in RULES if r.plotted and (done or not r.name.startswith("judged"))]
    print("| threshold | " + " | ".join(r.name for r in shown) + " |")
    print("|---|" + "---|" * len(shown))
    curves = [tradeoff(target, r, THRESHOLD_STEPS) for r in shown]
    for k, t in enumerate(THRESHOLD_STEPS):
        cells = [f"{c[k][1]:.1f} / {c[k][2]:.0%}" for c in curves]
        print(f"| {t:g} | " + " | ".join(cells) + " |")
    if svg:
        write_svg(target, Path(svg), shown)


#: Thresholds (bits) of the trade-off table.
THRESHOLD_STEPS = (8, 10, 12, 14, 16, 18, 20, 24)


def load_rows(chosen):
    rows = []
    for case, span in chosen:
        buggy, fixed = load_cached(case, "buggy"), load_cached(case, "fixed")
        if buggy is None or fixed is None:
            continue
        b = attach_judged(case, "buggy", analyze_scored(buggy, case.path))
        f = attach_judged(case, "fixed", analyze_scored(fixed, case.path))
        rows.append((case, span, b, f))
    return rows


def print_table(rows, rules) -> None:
    n_clean = sum(f.scored.text.count("\n") + 1 for *_, f in rows)
    print(
        f"{len(rows)} cases ({sum(bool(s) for _, s, *_ in rows)} within one function),"
        f" {n_clean:,} lines of fixed (clean) code; threshold {DIAGNOSTIC_THRESHOLD} bits"
    )
    print(
        "| rule | in function: top-1 | top-3 | MRR | bugs published | clean: lines >= threshold"
        " per 1,000 | first code line flagged | at <= 5 per 1,000: threshold, bugs published |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rule in rules:
        ranks, shown, alarms, first_flagged = [], [], 0.0, 0
        for case, span, b, f in rows:
            targets = set(case.target_lines)
            scores = rule.score(b)
            if span:
                fn = set(range(span[0], span[1] + 1))
                ranks.append(rank_of(scores, targets, fn))
            if rule.thresholded:
                shown.append(published(scores, targets, DIAGNOSTIC_THRESHOLD))
                clean = rule.score(f)
                alarms += sum(s >= DIAGNOSTIC_THRESHOLD for s in clean.values())
                first = min(code_lines(f), default=None)  # the first line with code
                first_flagged += first is not None and clean.get(first, 0) >= DIAGNOSTIC_THRESHOLD
        found = [r for r in ranks if r is not None]
        top1 = sum(r == 1 for r in found) / max(len(ranks), 1)
        top3 = sum(r <= 3 for r in found) / max(len(ranks), 1)
        mrr = sum(1 / r for r in found) / max(len(ranks), 1)
        pub = f"{sum(shown) / len(shown):.0%}" if shown else "—"
        fa = f"{1000 * alarms / n_clean:.1f}" if rule.thresholded else "—"
        fl = f"{first_flagged}/{len(rows)}" if rule.thresholded else "—"
        at5 = "—"
        if rule.thresholded:
            t, share = matched_threshold(rows, rule, GOAL_ALARMS)
            at5 = f"{t:g}: {share:.0%}"
        print(
            f"| {rule.name} | {top1:.0%} | {top3:.0%} | {mrr:.2f} | {pub} | {fa} | {fl} | {at5} |"
        )
    # Random order within the function, expected values.
    exp1 = exp3 = emrr = 0.0
    for case, span, b, _f in rows:
        if not span:
            continue
        lines = [n for n in code_lines(b) if span[0] <= n <= span[1]]
        k, t = len(lines), len(set(case.target_lines) & set(lines))
        if not k or not t:
            continue
        # P(best target at rank r) for t targets among k lines in random order.
        p = [_first_hit(k, t, r) for r in range(1, k + 1)]
        exp1 += p[0]
        exp3 += sum(p[:3])
        emrr += sum(pr / r for r, pr in enumerate(p, 1))
    n_fn = sum(bool(s) for _, s, *_ in rows)
    print(
        f"| random order (expected) | {exp1 / n_fn:.0%} | {exp3 / n_fn:.0%} | {emrr / n_fn:.2f}"
        " | — | — | — | — |"
    )


#: Issue 18's goal: at most this many clean lines per 1,000 at or above the threshold.
GOAL_ALARMS = 5.0


def matched_threshold(rows, rule: Rule, alarms: float) -> tuple[float, float]:
    """The lowest threshold (0.25-bit steps from 8 bits) at which ``rule`` flags at most
    ``alarms`` clean lines per 1,000, and the share of bugs published there: rules compared
    at the same false-alarm rate."""
    steps = [8 + k / 4 for k in range(0, 129)]
    for t, fa, pub in tradeoff(rows, rule, steps):
        if fa <= alarms:
            return t, pub
    return steps[-1], 0.0


def _first_hit(k: int, t: int, r: int) -> float:
    """P(the first of t targets among k shuffled lines is at rank r)."""
    p = 1.0
    for i in range(r - 1):
        p *= (k - t - i) / (k - i)
    return p * t / (k - r + 1)


def tradeoff(rows, rule: Rule, thresholds) -> list[tuple[float, float, float]]:
    """(threshold, clean lines at or above it per 1,000, share of bugs published)."""
    n_clean = sum(f.scored.text.count("\n") + 1 for *_, f in rows)
    scores = [(case, rule.score(b), rule.score(f)) for case, _s, b, f in rows]
    out = []
    for t in thresholds:
        fa = 1000 * sum(sum(s >= t for s in fs.values()) for _c, _b, fs in scores) / n_clean
        pub = statistics.mean(published(bs, set(c.target_lines), t) for c, bs, _ in scores)
        out.append((t, fa, pub))
    return out


def write_svg(rows, path: Path, rules: list[Rule]) -> None:
    """False alarms per 1,000 clean lines (x, log) against bugs published (y), per rule."""
    import math

    thresholds = [t / 2 for t in range(8, 61)]
    w, h, pad = 560, 360, 50
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    def x(fa: float) -> float:
        return pad + (math.log10(max(fa, 0.1)) + 1) / 4 * (w - 2 * pad)  # 0.1 .. 1,000

    def y(share: float) -> float:
        return h - pad - share * (h - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="11"'
        ' font-family="sans-serif">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
    ]
    for fa in (0.1, 1, 5, 10, 100, 1000):
        parts.append(f'<text x="{x(fa):.0f}" y="{h - pad + 15}" text-anchor="middle">{fa:g}</text>')
    for share in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<text x="{pad - 5}" y="{y(share) + 4:.0f}" text-anchor="end">{share:.0%}</text>'
        )
    parts.append(
        f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">clean lines flagged per 1,000'
        " (log)</text>"
    )
    parts.append(
        f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">'
        "real bugs published</text>"
    )
    goal = x(5)
    parts.append(
        f'<line x1="{goal:.0f}" y1="{pad}" x2="{goal:.0f}" y2="{h - pad}" stroke="#999"'
        ' stroke-dasharray="4 3"/>'
    )
    legend_y = pad
    for i, rule in enumerate(rules):
        colour = colours[i % len(colours)]
        pts = tradeoff(rows, rule, thresholds)
        line = " ".join(f"{x(fa):.1f},{y(pub):.1f}" for _t, fa, pub in pts)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}"/>')
        for t, fa, pub in pts:
            if t == DIAGNOSTIC_THRESHOLD:
                parts.append(f'<circle cx="{x(fa):.1f}" cy="{y(pub):.1f}" r="3" fill="{colour}"/>')
        parts.append(
            f'<text x="{w - pad}" y="{legend_y}" text-anchor="end" fill="{colour}">'
            f"{rule.name}</text>"
        )
        legend_y += 14
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
    print(f"wrote {path}")


def main() -> None:
    global CACHE, RANKER  # --cache: where this run's model outputs live; --ranker
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="17 cases, two per project")
    ap.add_argument("--cases", type=int, help="the first N cases of a seeded shuffle")
    ap.add_argument(
        "--medium",
        action="store_true",
        help="every case whose fixed lines lie in one function, files up to 1,500 lines (67)",
    )
    ap.add_argument("--summary", action="store_true", help="report from the cache, no model")
    ap.add_argument("--svg", help="with --summary: write the trade-off plot here")
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--judge", nargs="?", const="default-large", help="confirm candidates")
    ap.add_argument(
        "--runtime",
        default="float32",
        help="how the models compute on a CPU (lossmap's --runtime; the cache holds one: give"
        " another runtime its own --cache)",
    )
    ap.add_argument("--cache", default=str(CACHE), help="where model outputs are cached")
    ap.add_argument(
        "--ranker", help="evaluate this line ranker file (default: benchmarks/ranker/ranker.json)"
    )
    args = ap.parse_args()
    CACHE = Path(args.cache)
    if args.ranker:
        RANKER = ranker_from_json(json.loads(Path(args.ranker).read_text()))
    chosen = choose(read_cases(), args.quick, args.cases, args.medium)
    if args.summary:
        summarize(chosen, args.svg)
        return
    live = load_model(args.model, device=args.device, runtime=args.runtime)
    judge = None
    if args.judge:
        # The judge has run with bfloat16 matmuls since its first cached verdicts.
        judge = load_model(args.judge, device=args.device, tokenizer_like=live)
    for i, (case, span) in enumerate(chosen, 1):
        buggy, fixed, seconds = score_case(live, case)
        if seconds:
            print(
                f"[{i}/{len(chosen)}] {case.id}: {case.n_lines} lines,"
                f" {len(buggy.tokens):,} tokens, scored in {seconds:.0f} s",
                flush=True,
            )
        if judge is not None:
            for version, scored in (("fixed", fixed), ("buggy", buggy)):
                analysis = analyze_scored(scored, case.path)
                seconds = judge_case(judge, live, case, version, analysis, span)
                if seconds:
                    print(f"  judge, {version}: {seconds:.0f} s", flush=True)
    summarize(chosen, None)


if __name__ == "__main__":
    main()
