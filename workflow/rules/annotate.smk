rule annotate:
    """One annotator over pool and dev items -> its annotation table.

    LLM answers go through the response cache under `cache_dir` (outside results/), so a rerun,
    even after deleting results/, never sends a request twice. Rows that failed for a transient
    reason raise the `retry` param (llmal.llm.retry): the next plain `snakemake` runs the job
    again, which sends exactly the failed requests.
    """
    input:
        unpack(annotate_inputs),
    output:
        annotation_file("{annotator}"),
    params:
        spec=lambda wc: config["annotators"][wc.annotator],
        config=lambda wc: {k: config.get(k) for k in ("labels", "prices", "cache_dir", "encoders")},
        retry=annotate_retry_token,
    log:
        RESULTS + "/logs/annotate/{annotator}.log",
    conda:
        "../../envs/llm.yaml"
    script:
        "../../scripts/annotate.py"
