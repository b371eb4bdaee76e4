"""Where the errors are, as tables: FP/FN per condition and encoder, and the topics they concentrate in.

Tables as data, mean ± sd over seeds."""
from __future__ import annotations

import math

import pandas as pd

from llmal.results.settings import KEYS, UNKNOWN_TOPIC, AggregateSettings, groups, mean_sd, ratio, safe_div


def fpfn_table(finals: pd.DataFrame, settings: AggregateSettings) -> pd.DataFrame:
    """Per condition × encoder: mean/sd of FP and FN, FP/FN ratio (of the means), and mean
    false-positive rate FP/(FP+TN) and false-negative rate FN/(FN+TP)."""
    rows = []
    for (cond, enc), g in groups(finals, settings):
        fp, fn = g["fp"].astype(float), g["fn"].astype(float)
        fp_mean, fp_sd = mean_sd(fp)
        fn_mean, fn_sd = mean_sd(fn)
        rows.append({
            "condition": cond, "encoder": enc, "n_seeds": int(g["seed"].nunique()),
            "fp_mean": fp_mean, "fp_sd": fp_sd, "fn_mean": fn_mean, "fn_sd": fn_sd,
            "fp_fn_ratio": ratio(fp_mean, fn_mean),
            "fp_rate_mean": mean_sd(safe_div(fp, fp + g["tn"].astype(float)))[0],
            "fn_rate_mean": mean_sd(safe_div(fn, fn + g["tp"].astype(float)))[0],
        })
    return pd.DataFrame(rows)


def _topic_counts(run: pd.DataFrame, pos_idx: pd.Series) -> pd.DataFrame:
    """One run's test items per topic: n, n_gold_pos, n_gold_neg, fp, fn (with KEYS and topic)."""
    p = run.join(pos_idx, on=KEYS)
    gold_pos = p["gold"] == p["positive_index"]
    pred_pos = p["pred"] == p["positive_index"]
    p = p.assign(topic=p["topic"].replace("", UNKNOWN_TOPIC), n=1, n_gold_pos=gold_pos.astype(int),
                 n_gold_neg=(~gold_pos).astype(int), fp=(pred_pos & ~gold_pos).astype(int),
                 fn=(~pred_pos & gold_pos).astype(int))
    counts = p.groupby(KEYS + ["topic"], sort=False)[["n", "n_gold_pos", "n_gold_neg", "fp", "fn"]].sum()
    return counts.reset_index()


def errors_by_topic_table(predictions: pd.DataFrame, finals: pd.DataFrame,
                          settings: AggregateSettings) -> pd.DataFrame:
    """Per condition × encoder × topic, from the final-round test predictions.

    fp_rate = FP / items whose gold is not positive; fn_rate = FN / items whose gold is positive;
    error_rate = (FP + FN) / items; each first per seed, then the mean over seeds.
    error_share = the topic's FP + FN summed over seeds / all FP + FN of that condition × encoder
    (so shares sum to 1 whenever there is any error); item_share likewise for test items;
    concentration = error_share / item_share (above 1: more errors than the topic's size implies).
    rank orders topics by error_share (1 = most); top marks the first `settings.top_topics`.
    """
    pos_idx = finals.set_index(KEYS)["positive_index"]
    # one run at a time: the counts are small, the runs' predictions together are not
    per_seed = pd.concat([_topic_counts(run, pos_idx) for _, run in
                          predictions[KEYS + ["gold", "pred", "topic"]].groupby(KEYS, sort=False)],
                         ignore_index=True)
    per_seed["fp_rate"] = safe_div(per_seed["fp"], per_seed["n_gold_neg"])
    per_seed["fn_rate"] = safe_div(per_seed["fn"], per_seed["n_gold_pos"])
    per_seed["error_rate"] = safe_div(per_seed["fp"] + per_seed["fn"], per_seed["n"])
    rows = []
    for (cond, enc), g in groups(per_seed, settings):
        total_err = float((g["fp"] + g["fn"]).sum())
        total_n = float(g["n"].sum())
        part = []
        for topic, gt in g.groupby("topic", sort=True):
            err = float((gt["fp"] + gt["fn"]).sum())
            item_share = float(gt["n"].sum()) / total_n if total_n else float("nan")
            share = err / total_err if total_err else float("nan")
            part.append({
                "condition": cond, "encoder": enc, "topic": topic, "n_seeds": int(gt["seed"].nunique()),
                "n_items": float(gt["n"].mean()), "fp_mean": float(gt["fp"].mean()),
                "fn_mean": float(gt["fn"].mean()), "fp_rate": float(gt["fp_rate"].mean()),
                "fn_rate": float(gt["fn_rate"].mean()), "error_rate": float(gt["error_rate"].mean()),
                "error_share": share, "item_share": item_share,
                "concentration": ratio(share, item_share),
            })
        part.sort(key=lambda r: (-(r["error_share"] if not math.isnan(r["error_share"]) else -1), r["topic"]))
        for rank, r in enumerate(part, start=1):
            r["rank"] = rank
            r["top"] = bool(rank <= settings.top_topics and r["error_share"] > 0)
        rows.extend(part)
    columns = ["condition", "encoder", "topic", "rank", "top", "n_seeds", "n_items", "fp_mean", "fn_mean",
               "fp_rate", "fn_rate", "error_rate", "error_share", "item_share", "concentration"]
    return pd.DataFrame(rows, columns=columns)
