rule embed:
    """Frozen features, computed once per encoder and reused by every run."""
    input:
        item_table=ITEMS,
        split_table=SPLIT,
    output:
        embeddings_file("{encoder}"),
    params:
        spec=lambda wc: config["encoders"][wc.encoder],
    log:
        RESULTS + "/logs/embed/{encoder}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../../scripts/embed.py"
