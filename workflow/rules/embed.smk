rule embed:
    """Frozen features, computed once per encoder and reused by every run."""
    input:
        item_table=ITEMS,
        split_table=SPLIT,
    output:
        embeddings_file("{encoder}"),
    params:
        spec=lambda wc: config["encoders"][wc.encoder],
    resources:
        **SITE_RESOURCES,
        slurm_partition=SITE.get("cpu_partition", ""),
        mem_mb=lambda wc, input: cluster.mem_mb(input.size_mb, 0),
        runtime=cluster.DEFAULT_RUNTIME["embed"],
    log:
        f"{RESULTS}/logs/embed/{{encoder}}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../../scripts/embed.py"
