"""The stop table (llmal.results.stopping) as display cells, caption and Markdown."""
from __future__ import annotations

import pandas as pd

from llmal.report import tablefmt


def stopping_display(table: pd.DataFrame) -> pd.DataFrame:
    """One row per condition × encoder × criterion: where it fired and what stopping there bought."""
    metric = str(table["metric"].iloc[0]) if len(table) else "metric"
    return pd.DataFrame({
        "Encoder": table["encoder"], "Condition": table["condition"], "Criterion": table["criterion"],
        "Mode": table["mode"],
        "Fired": [f"{int(f)}/{int(n)}" for f, n in zip(table["n_fired"], table["n_seeds"])],
        "Round": table["round_mean"].map(lambda v: tablefmt.format_number(v, 1)),
        "Labels at stop": [tablefmt.format_mean_sd(m, s, 0) for m, s in
                           zip(table["n_labels_stop_mean"], table["n_labels_stop_sd"])],
        "Cost at stop ($)": [tablefmt.format_mean_sd(m, s, None) for m, s in
                             zip(table["cost_stop_mean"], table["cost_stop_sd"])],
        f"{metric} at stop": [tablefmt.format_mean_sd(m, s, 3) for m, s in
                              zip(table["metric_stop_mean"], table["metric_stop_sd"])],
        f"{metric} at full budget": [tablefmt.format_mean_sd(m, s, 3) for m, s in
                                     zip(table["metric_full_mean"], table["metric_full_sd"])],
        "Δ (stop − full)": [tablefmt.format_mean_sd(m, s, 3) for m, s in
                            zip(table["metric_diff_mean"], table["metric_diff_sd"])],
        "Labels saved": table["labels_saved_share"].map(tablefmt.format_percent),
        "Cost saved": table["cost_saved_share"].map(tablefmt.format_percent),
        "Note": table["note"].fillna(""),
    }).reset_index(drop=True)


def stopping_caption(metric: str) -> str:
    return (f"Stopping criteria (al.stop): mean over seeds of the round at which each criterion "
            f"first said stop, the training labels, cost_total and test {metric} there, against "
            f"the same run at its full budget (its last round). A seed whose criterion never fired "
            "counts its last round as the stop. Saved: mean over seeds of 1 − at stop / at full "
            "budget. Runs in mode stop ended at the stop, so only record mode has full-budget values.")


def stopping_markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return "No run checked a stopping criterion (every run ended in round 0).\n"
    return (stopping_caption(str(table["metric"].iloc[0])) + "\n\n"
            + tablefmt.markdown_table(stopping_display(table)))
