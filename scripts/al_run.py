"""Rule al_run: one condition x encoder x seed."""
from llmal.runner import run_al
from llmal.workflow import log_executors, logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    log_executors()   # lazy LLM annotators: batch ids, resumed batches and retries
    run_al(threads=sm.threads, spec=sm.params.spec, dataset=sm.params.dataset, seed=int(sm.wildcards.seed),
           inputs=dict(sm.input), outputs=dict(sm.output))
