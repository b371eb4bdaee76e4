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
        config=annotate_config,
        retry=annotate_retry_token,
        **TASK_PARAM,
    wildcard_constraints:
        # vLLM and local GGUF annotators compute: they have a rule of their own (annotate_compute)
        annotator=rf"(?!(?:{COMPUTE_ANNOTATOR_RE})\.parquet){NAME}",
    log:
        f"{RESULTS}/logs/annotate/{{annotator}}.log",
    conda:
        "../../envs/llm.yaml"
    script:
        "../../scripts/annotate.py"


# Human, simulated and mixture annotation are table look-ups, and API annotators wait on the
# network (a Batch API job may wait up to its completion window): all run on the submit host.
localrules:
    annotate,


# vLLM (offline, with a GPU) and local GGUF models compute: a cluster job each.
use rule annotate as annotate_compute with:
    wildcard_constraints:
        annotator=COMPUTE_ANNOTATOR_RE,
    threads: 2
    resources:
        **SITE_RESOURCES,
        gpu=annotate_gpus,
        slurm_partition=annotate_partition,
        gpu_model=lambda wc: cluster.gpu_model(SITE, annotate_gpus(wc)),
        cpus_per_gpu=lambda wc: cluster.cpus_per_gpu(SITE, annotate_gpus(wc)),
        mem_mb=lambda wc: 32000 if annotate_gpus(wc) else 8000,
        runtime=cluster.DEFAULT_RUNTIME["annotate"],
