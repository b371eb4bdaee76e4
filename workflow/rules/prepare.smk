rule prepare:
    """Dataset -> items table and pool/dev/test split (the contract of DESIGN.md)."""
    input:
        dataset_inputs,
    output:
        item_table=ITEMS,
        split_table=SPLIT,
    params:
        dataset=config["dataset"],
        labels=config["labels"],
        split=config.get("split", {}),
        cache_dir=config.get("cache_dir", ".llmal-cache"),
        **TASK_PARAM,
    log:
        f"{RESULTS}/logs/prepare.log",
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/prepare.py"


# reading (or downloading) the dataset needs the network and little compute: the submit host
localrules:
    prepare,
