rule agreement:
    """Every annotated annotator (used by a condition, a mixture member, the reference, or listed in
    agreement.annotators) against gold (all items and the dev gold set), each other
    (pairwise Cohen's kappa, Fleiss' kappa) and its replicates; costs against a human reference."""
    input:
        annotations=CONFIGURED_ANNOTATIONS,
        item_table=ITEMS,
        split_table=SPLIT,
    output:
        reported(AGREEMENT_OUTPUTS),
    params:
        config=AGREEMENT_CONFIG,
        **TASK_PARAM,
    log:
        f"{RESULTS}/logs/agreement.log",
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/agreement.py"


localrules:
    agreement,
