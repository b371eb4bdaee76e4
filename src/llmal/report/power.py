"""The power table (llmal.results.power) as display cells, caption, Markdown and plain text."""
from __future__ import annotations

import pandas as pd

from llmal.report import tablefmt


def power_display(table: pd.DataFrame) -> pd.DataFrame:
    metric = str(table["metric"].iloc[0]) if len(table) else "metric"
    delta = float(table["delta"].iloc[0]) if len(table) else float("nan")
    count = lambda v: tablefmt.format_count(v)   # noqa: E731
    return pd.DataFrame({
        "Encoder": table["encoder"], "Condition": table["condition"], "vs": table["reference"],
        "Seeds": table["n_pairs"].astype(int),
        f"sd of Δ {metric}": table["sd_diff"].map(lambda v: tablefmt.format_number(v, 4)),
        "MDD": table["mdd"].map(lambda v: tablefmt.format_number(v, 4)),
        "MDD (Holm)": table["mdd_holm"].map(lambda v: tablefmt.format_number(v, 4)),
        f"Seeds for Δ={delta:g}": table["seeds_needed"].map(count),
        f"Seeds for Δ={delta:g} (Holm)": table["seeds_needed_holm"].map(count),
        "Note": table["note"].fillna(""),
    }).reset_index(drop=True)


def power_caption(table: pd.DataFrame) -> str:
    if table.empty:
        return "No comparisons: only the reference condition was run."
    alpha, power = float(table["alpha"].iloc[0]), float(table["power"].iloc[0])
    wil = int(table["wilcoxon_min_seeds"].max())
    return (f"Seeds and power, from the seed variance of each comparison's paired differences "
            f"(significance table: condition − reference, per encoder). MDD: the minimum "
            f"detectable difference at α = {alpha:g} and power {power:g} with the seeds used; "
            f"seeds for Δ: the seeds a difference Δ needs. Computed with statsmodels' power class "
            f"for the paired t-test (TTestPower, two-sided); (Holm): at α / m, Holm's first step "
            f"over the m comparisons of an encoder. The exact Wilcoxon test cannot reach p < α / m "
            f"with fewer than {wil} seeds whatever the differences.")


def power_markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return power_caption(table) + "\n"
    return power_caption(table) + "\n\n" + tablefmt.markdown_table(power_display(table))
