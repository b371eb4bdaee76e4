"""The report's Findings section, written from `llmal.results.findings` (rendering only).

Every number is a `<span class="fv" data-src="...">` naming the table cells it comes from, so a
reader (or a test) can trace it; names of conditions and annotators are in `<code>`.
"""
from __future__ import annotations

import html
import json
import math
from typing import Sequence

from llmal.report.figures import metric_label
from llmal.results.findings import ALPHA, Balance, Comparison, EncoderFindings, TopicFinding, Value


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def fmt(v: Value, *, signed: bool = False) -> str:
    """The text a Value is shown as (the test formats the looked-up number the same way)."""
    x = v.value
    if not math.isfinite(x):
        return "–"
    if v.decimals == 0:
        return f"{x:,.0f}"
    return f"{x:+.{v.decimals}f}" if signed else f"{x:.{v.decimals}f}"


def _v(v: Value | None, *, signed: bool = False) -> str:
    if v is None:
        return "–"
    return (f'<span class="fv" data-src="{_e(json.dumps(v.source(), sort_keys=True))}" '
            f'data-signed="{int(signed)}">{_e(fmt(v, signed=signed))}</span>')


def _c(name: str) -> str:
    return f"<code>{_e(name)}</code>"


def _significance(c: Comparison) -> str:
    p = c.p_holm.value if c.p_holm is not None else float("nan")
    if c.n_pairs.value < 2:
        return (f" With {_v(c.n_pairs)} paired seed no paired test can be made, so this comparison "
                "cannot reach significance; run more seeds.")
    if c.too_few_seeds:
        return (f" With {_v(c.n_pairs)} paired seeds this comparison cannot reach significance: the exact "
                f"{_e(c.test)} test cannot give p below {_v(c.min_p)} however large the difference; "
                "run more seeds before reading anything into it.")
    if math.isfinite(p) and p < ALPHA:
        return " The difference is significant after Holm correction."
    return " The difference is not significant after Holm correction."


def _comparison(c: Comparison, metric: str, what: str) -> str:
    budget = f" at {_v(c.budget)} labels" if c.budget is not None else ""
    family = (f" (over the {_v(c.family_size)} comparisons with the reference at this budget)"
              if c.family_size is not None and c.family_size.value > 0 else
              " (over this encoder's AL-against-random comparisons)" if c.family_size is None else "")
    cost = (f" A label of {_c(c.condition)} costs {_v(c.cost_ratio)} times one of {_c(c.against)}."
            if c.cost_ratio is not None else "")
    return (f"<li>{what}: {_c(c.condition)} against {_c(c.against)}{budget}: "
            f'<em class="m">{_e(metric_label(metric))}</em> {_v(c.mean)} vs {_v(c.mean_against)}, '
            f"Δ {_v(c.diff, signed=True)} (95 % CI {_v(c.ci_low, signed=True)} to {_v(c.ci_high, signed=True)}), "
            f"{_e(c.test)} test, Holm-corrected p = {_v(c.p_holm)}{family}.{cost}{_significance(c)}</li>")


def _balance(b: Balance, ref: str, degenerate: Sequence[str]) -> str:
    lean = ("more false positives than false negatives" if b.fp.value > b.fn.value else
            "more false negatives than false positives" if b.fn.value > b.fp.value else
            "as many false positives as false negatives")
    ratio = f", FP/FN {_v(b.ratio)}" if b.ratio is not None else ""
    role = " (the reference)" if b.condition == ref else ""
    if b.condition in degenerate:
        lean = "its model predicts one class for every test item"
    return (f"{_c(b.annotator)} through {_c(b.condition)}{role}: FP {_v(b.fp)}, FN {_v(b.fn)}{ratio} "
            f"— {lean}")


def _topic(t: TopicFinding) -> str:
    return (f"<li>Errors concentrate most on the topic {_c(t.topic)} (under {_c(t.condition)}): "
            f"error rate {_v(t.error_rate)}, {_v(t.concentration)} times its share of the test items.</li>")


def findings_html(findings: Sequence[EncoderFindings], metric: str) -> list[str]:
    """The section's HTML parts (heading included)."""
    out = ['<h2 id="findings">Findings</h2>',
           '<p class="caption">Written from the tables below (matched_budget.csv, summary.csv, '
           "aulc.csv, fpfn.csv, errors_by_topic.csv); each number names its cell (hover data-src). "
           "Δ = condition − comparison, mean over paired seeds; 95 % CI from the t distribution. "
           "AL against random compares the final rounds of runs that bought the same number of labels.</p>"]
    if not findings:
        return out + ["<p>No runs to draw findings from.</p>"]
    for f in findings:
        items = []
        if f.llm_vs_human is not None:
            items.append(_comparison(f.llm_vs_human, metric, "LLM labels against the human reference"))
        for note in f.notes:
            items.append(f"<li>{_e(note)}.</li>")
        for c in f.al_vs_random:
            items.append(_comparison(c, metric, f"AL against random under {_c(c.annotator)}"))
        if not f.al_vs_random:
            items.append("<li>No AL condition has a random condition of the same annotator to compare with.</li>")
        if f.balance:
            items.append("<li>FP/FN balance: " + "; ".join(_balance(b, f.reference, f.degenerate) for b in f.balance) + ".</li>")
        else:
            items.append("<li>FP/FN balance: without a positive class FP and FN are counted per class, one "
                         "against the rest: see the table below.</li>")
        if f.topic is not None:
            items.append(_topic(f.topic))
        out += [f"<h3>Encoder {_c(f.encoder)}</h3>", '<ul class="findings">', *items, "</ul>"]
    return out
