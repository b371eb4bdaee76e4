"""The study's answers, read off its tables: what the report's Findings section says.

Per encoder:
- the best LLM condition against the human reference at the largest label budget both reached
  (tables/matched_budget.csv: Δ, 95 % CI, the primary test and its Holm-corrected p), with the
  ratio of their cost per training label (tables/summary.csv);
- AL against random under each annotator: the final-round scores of each AL condition and the
  random condition of the same annotator and recipe, paired by seed (tables/aulc.csv, where
  every run's final score is), tested as the matched-budget table tests, Holm-corrected over the
  AL-vs-random comparisons of the encoder; pairs that ended at different label counts are not
  compared;
- the FP/FN balance of each annotator's condition against the reference (tables/fpfn.csv);
- the topic where errors concentrate most (tables/errors_by_topic.csv).

Nothing is hard-coded: every number is a `Value` that names the table cells it comes from, so
the report can show it and a test can look it up. A comparison whose test cannot reach p < 0.05
with the seeds run says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.results.settings import AggregateSettings, ordered
from llmal.results.stats import holm, paired_comparison

ALPHA = 0.05
NOT_AL = ("random", "full")


@dataclass(frozen=True)
class Value:
    """A number and where it comes from: `table` and the `row` keys of one cell (`column`), or
    for a derived value `kind` (ratio of two cells, a paired test on aulc.csv, ...)."""
    value: float
    kind: str                     # cell | ratio | aulc_pair | holm | count
    table: str = ""
    row: tuple[tuple[str, Any], ...] = ()
    column: str = ""
    other: tuple[tuple[str, Any], ...] = ()   # ratio: the denominator's row; aulc_pair: the random condition's
    decimals: int = 3

    def source(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "row": dict(self.row), "column": self.column,
                "other": dict(self.other), "decimals": self.decimals}


@dataclass
class Comparison:
    """One condition against another, paired by seed."""
    encoder: str
    condition: str
    against: str
    annotator: str
    budget: Value | None
    mean: Value
    mean_against: Value
    diff: Value
    ci_low: Value
    ci_high: Value
    test: str
    p_holm: Value | None
    n_pairs: Value
    family_size: Value | None
    cost_ratio: Value | None = None
    too_few_seeds: bool = False
    min_p: Value | None = None     # the smallest p the exact test reaches with n_pairs


@dataclass
class Balance:
    encoder: str
    condition: str
    annotator: str
    fp: Value
    fn: Value
    ratio: Value | None


@dataclass
class TopicFinding:
    encoder: str
    condition: str
    topic: str
    error_rate: Value
    concentration: Value


@dataclass
class EncoderFindings:
    encoder: str
    reference: str
    reference_annotator: str
    llm_vs_human: Comparison | None = None
    al_vs_random: list[Comparison] = field(default_factory=list)
    balance: list[Balance] = field(default_factory=list)
    topic: TopicFinding | None = None
    degenerate: list[str] = field(default_factory=list)   # conditions predicting one class only
    notes: list[str] = field(default_factory=list)


def _kinds(config: Mapping[str, Any]) -> dict[str, str]:
    return {str(n): str((a or {}).get("kind", "")) for n, a in (config.get("annotators") or {}).items()}


def _cell(df: pd.DataFrame, **keys: Any) -> pd.Series | None:
    mask = np.ones(len(df), dtype=bool)
    for k, v in keys.items():
        mask &= (df[k] == v).to_numpy()
    rows = df[mask]
    return rows.iloc[0] if len(rows) else None


def _val(table: str, row: pd.Series, keys: Sequence[str], column: str, decimals: int = 3) -> Value:
    return Value(float(row[column]), "cell", table, tuple((k, _plain(row[k])) for k in keys), column,
                 decimals=decimals)


def _plain(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def min_wilcoxon_p(n_pairs: int) -> float:
    """The smallest two-sided p the exact Wilcoxon test reaches with n pairs (2 / 2^n)."""
    return min(1.0, 2.0 / 2.0 ** n_pairs) if n_pairs else 1.0


def _limit(c: Comparison, test: str) -> None:
    """With the Wilcoxon test and so few seeds that even the best case stays above ALPHA."""
    if test != "wilcoxon":
        return
    n = int(c.n_pairs.value)
    c.min_p = Value(min_wilcoxon_p(n), "min_p", c.n_pairs.table, c.n_pairs.row, c.n_pairs.column,
                    c.n_pairs.other, decimals=3)
    c.too_few_seeds = c.min_p.value > ALPHA


def study_findings(config: Mapping[str, Any], settings: AggregateSettings, *, summary: pd.DataFrame,
                   matched: pd.DataFrame, aulc: pd.DataFrame, fpfn: pd.DataFrame,
                   topics: pd.DataFrame, primary_test: str = "wilcoxon") -> list[EncoderFindings]:
    """The findings of every encoder (see the module doc)."""
    conditions = {str(n): dict(c or {}) for n, c in (config.get("conditions") or {}).items()}
    kinds = _kinds(config)
    metric = settings.metric
    ref = settings.reference
    annot = {c: str(s.get("annotator", "")) for c, s in conditions.items()}
    human = {c for c, a in annot.items() if kinds.get(a) == "human"}
    out = []
    for enc in ordered(summary["encoder"].unique(), settings.encoder_order):
        f = EncoderFindings(encoder=str(enc), reference=ref, reference_annotator=annot.get(ref, ""))
        s_enc = summary[summary["encoder"] == enc]
        present = set(s_enc["condition"].astype(str))
        llm = [c for c in ordered(present, settings.condition_order) if c not in human and c != ref]
        f.llm_vs_human = _llm_vs_human(enc, ref, llm, annot, matched, summary, metric, primary_test)
        if f.llm_vs_human is None:
            f.notes.append("no LLM condition was tested against the reference at a common label budget")
        f.al_vs_random = _al_vs_random(enc, conditions, present, aulc, metric, primary_test, settings)
        f.balance = _balance(enc, ref, conditions, present, fpfn, settings)
        degenerate = set(s_enc.loc[s_enc["degenerate"].astype(str).str.lower() == "true", "condition"].astype(str)) \
            if "degenerate" in s_enc.columns else set()
        f.topic = _topic(enc, topics, degenerate)
        f.degenerate = sorted(degenerate)
        out.append(f)
    return out


def _llm_vs_human(enc: str, ref: str, llm: list[str], annot: Mapping[str, str], matched: pd.DataFrame,
                  summary: pd.DataFrame, metric: str, test: str) -> Comparison | None:
    m = matched[(matched["encoder"] == enc) & (matched["budget_kind"] == "labels")]
    tested = m[m["condition"].isin(llm) & (m["n_pairs"] > 0)]
    if tested.empty or m[m["condition"] == ref].empty:
        return None
    budget = float(tested["budget"].max())
    at = tested[tested["budget"] == budget]
    best = at.loc[at[f"{metric}_mean"].idxmax()]
    ref_row = _cell(m, budget=budget, condition=ref)
    keys = ("budget_kind", "budget", "encoder", "condition")
    cond = str(best["condition"])
    n = int(best["n_pairs"])
    cmp = Comparison(
        encoder=enc, condition=cond, against=ref, annotator=annot.get(cond, ""),
        budget=_val("matched_budget.csv", best, keys, "budget", 0),
        mean=_val("matched_budget.csv", best, keys, f"{metric}_mean"),
        mean_against=_val("matched_budget.csv", ref_row, keys, f"{metric}_mean"),
        diff=_val("matched_budget.csv", best, keys, "mean_diff"),
        ci_low=_val("matched_budget.csv", best, keys, "ci_low"),
        ci_high=_val("matched_budget.csv", best, keys, "ci_high"),
        test=str(best["primary_test"]), p_holm=_val("matched_budget.csv", best, keys, "p_holm"),
        n_pairs=_val("matched_budget.csv", best, keys, "n_pairs", 0),
        family_size=_val("matched_budget.csv", best, keys, "family_size", 0))
    _limit(cmp, test)
    a = _cell(summary, condition=cond, encoder=enc)
    b = _cell(summary, condition=ref, encoder=enc)
    if "cost_total_mean" in summary.columns and a is not None and b is not None and b["cost_total_mean"] > 0 and a["n_labels_mean"] > 0:
        per_a = a["cost_total_mean"] / a["n_labels_mean"]
        per_b = b["cost_total_mean"] / b["n_labels_mean"]
        cmp.cost_ratio = Value(float(per_a / per_b), "ratio", "summary.csv",
                               (("condition", cond), ("encoder", enc)), "cost_total_mean/n_labels_mean",
                               (("condition", ref), ("encoder", enc)), decimals=4)
    return cmp


def _al_vs_random(enc: str, conditions: Mapping[str, dict], present: set[str], aulc: pd.DataFrame,
                  metric: str, test: str, settings: AggregateSettings) -> list[Comparison]:
    """Per annotator, its AL conditions against its random condition (same recipe), paired by seed."""
    final = f"final_{metric}"
    if final not in aulc.columns:
        return []
    a_enc = aulc[aulc["encoder"] == enc]
    pairs = []
    for cond in ordered(present, settings.condition_order):
        spec = conditions.get(cond) or {}
        if str(spec.get("sampler", "")) in NOT_AL or spec.get("training"):
            continue
        rnd = next((c for c in ordered(present, settings.condition_order)
                    if (conditions.get(c) or {}).get("sampler") == "random"
                    and (conditions.get(c) or {}).get("annotator") == spec.get("annotator")
                    and (conditions.get(c) or {}).get("recipe") == spec.get("recipe")
                    and not (conditions.get(c) or {}).get("training")
                    and (conditions.get(c) or {}).get("al") == spec.get("al")), None)
        if rnd is None:
            continue
        x = a_enc[a_enc["condition"] == cond].set_index("seed")
        y = a_enc[a_enc["condition"] == rnd].set_index("seed")
        common = sorted(set(x.index) & set(y.index))
        if len(common) < 2 or x["deterministic"].any() or y["deterministic"].any():
            continue
        if not np.allclose(x.loc[common, "labels_max"], y.loc[common, "labels_max"]):
            continue     # ended at different label counts: not a matched budget
        pairs.append((cond, rnd, str(spec.get("annotator", "")), common,
                      paired_comparison(x.loc[common, final].to_numpy(), y.loc[common, final].to_numpy())))
    p_col = "p_wilcoxon" if test == "wilcoxon" else "p_ttest"
    adjusted = holm([getattr(r, p_col) for *_, r in pairs])
    out = []
    family = tuple(f"{cond}>{rnd}" for cond, rnd, *_ in pairs)
    for (cond, rnd, annotator, common, r), p_adj in zip(pairs, adjusted):
        pair = (("condition", cond), ("encoder", enc), ("seeds", tuple(int(s) for s in common)),
                ("holm_family", family))
        other = (("condition", rnd), ("encoder", enc))
        def v(value: float, kind: str, column: str) -> Value:
            return Value(float(value), kind, "aulc.csv", pair, column, other)
        c = Comparison(encoder=enc, condition=cond, against=rnd, annotator=annotator,
                       budget=Value(float(a_enc[a_enc["condition"] == cond]["labels_max"].iloc[0]), "cell",
                                    "aulc.csv", (("condition", cond), ("encoder", enc), ("seed", int(common[0]))),
                                    "labels_max", decimals=0),
                       mean=v(r.mean_condition, "aulc_mean", final), mean_against=v(r.mean_reference, "aulc_mean_other", final),
                       diff=v(r.mean_diff, "aulc_diff", final), ci_low=v(r.ci_low, "aulc_ci_low", final),
                       ci_high=v(r.ci_high, "aulc_ci_high", final), test=test,
                       p_holm=v(p_adj, "aulc_p_holm", final),
                       n_pairs=Value(float(r.n_pairs), "aulc_n", "aulc.csv", pair, final, other, decimals=0),
                       family_size=None)
        _limit(c, test)
        out.append(c)
    # per annotator, the AL condition that gained most over random
    best: dict[str, Comparison] = {}
    for c in out:
        if c.annotator not in best or c.diff.value > best[c.annotator].diff.value:
            best[c.annotator] = c
    return list(best.values())


def _balance(enc: str, ref: str, conditions: Mapping[str, dict], present: set[str], fpfn: pd.DataFrame,
             settings: AggregateSettings) -> list[Balance]:
    """Each annotator's FP and FN through its random condition (else its first), the reference first."""
    if "class" in fpfn.columns:     # no positive class: FP/FN per class, one against the rest
        return []
    chosen: dict[str, str] = {str((conditions.get(ref) or {}).get("annotator", "")): ref}
    for cond in ordered(present, settings.condition_order):
        a = str((conditions.get(cond) or {}).get("annotator", ""))
        if a not in chosen or ((conditions.get(cond) or {}).get("sampler") == "random"
                               and (conditions.get(chosen[a]) or {}).get("sampler") != "random"
                               and chosen[a] != ref):
            chosen[a] = cond
    out = []
    keys = ("condition", "encoder")
    for a, cond in chosen.items():
        row = _cell(fpfn, condition=cond, encoder=enc)
        if row is None:
            continue
        ratio = None if not math.isfinite(float(row["fp_fn_ratio"])) else _val("fpfn.csv", row, keys, "fp_fn_ratio", 2)
        out.append(Balance(enc, cond, a, _val("fpfn.csv", row, keys, "fp_mean", 1),
                           _val("fpfn.csv", row, keys, "fn_mean", 1), ratio))
    return out


def _topic(enc: str, topics: pd.DataFrame, degenerate: set[str]) -> TopicFinding | None:
    """The topic with the highest concentration (error share / item share) among the rank-1 topics
    of the encoder's conditions (not those whose model predicts one class for everything)."""
    if topics.empty or "concentration" not in topics.columns or "class" in topics.columns:
        return None
    t = topics[(topics["encoder"] == enc) & (topics["rank"] == 1) & ~topics["condition"].isin(degenerate)]
    t = t[np.isfinite(t["concentration"].astype(float))]
    if t.empty:
        return None
    row = t.loc[t["concentration"].astype(float).idxmax()]
    keys = ("condition", "encoder", "topic")
    return TopicFinding(enc, str(row["condition"]), str(row["topic"]),
                        _val("errors_by_topic.csv", row, keys, "error_rate", 3),
                        _val("errors_by_topic.csv", row, keys, "concentration", 2))
