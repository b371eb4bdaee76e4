AGGREGATE_OUTPUTS = [f"{RESULTS}/tables/{n}" for n in (
    "summary.csv", "summary.md", "summary.tex", "learning_curve.csv", "significance.csv",
    "significance.md", "fpfn.csv", "errors_by_topic.csv", "errors_by_topic.md", "aulc.csv",
    "matched_budget.csv", "matched_budget.md", "confusion.csv", "confusion.md", "per_class.csv",
    "per_class.md")] + [
    f"{RESULTS}/figures/{n}.{ext}" for n in ("learning_curve", "learning_curve_cost", "fpfn",
                                            "errors_by_topic", "aulc", "confusion") for ext in ("png", "svg", "pdf")]
if frontier_enabled(config):   # routed conditions (or aggregate.frontier): the cost-quality frontier
    AGGREGATE_OUTPUTS += [f"{RESULTS}/{n}" for n in FRONTIER_FILES]
if configured_stops(config):   # where a condition checks stopping criteria (al.stop)
    AGGREGATE_OUTPUTS += [f"{RESULTS}/tables/{n}" for n in ("stopping.csv", "stopping.md")]
if "tokens" in CAPABILITIES.budget_units:
    AGGREGATE_OUTPUTS += [f"{RESULTS}/figures/learning_curve_tokens.{ext}" for ext in ("png", "svg", "pdf")]


rule aggregate:
    """Mean +- sd over seeds, significance tests, FP/FN and topic errors; tables and figures."""
    input:
        runs=ALL_RUN_FILES,
    output:
        reported(AGGREGATE_OUTPUTS),
    params:
        config=summary_config(),
        run_dirs=[run.path(DATASET) for run in RUNS],
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/aggregate.py"


rule report:
    """One self-contained HTML page with everything a paper draft needs."""
    input:
        tables=AGGREGATE_OUTPUTS,
        annotations=ALL_ANNOTATIONS,
        agreement=AGREEMENT_OUTPUTS,
        split_table=SPLIT,
        item_table=ITEMS,
    output:
        report(f"{RESULTS}/report.html", caption="../report/report_html.rst", category="0. Report"),
    params:
        config=summary_config(),
        run_dirs=[run.path(DATASET) for run in RUNS],
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/report.py"


# tables, figures and the report read small files: they run on the submit host
localrules:
    aggregate,
    report,
