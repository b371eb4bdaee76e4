"""Rule al_run: one condition x encoder x seed (handed to the session's warm worker when there is one)."""
from llmal.warm import delegate

sm = snakemake  # noqa: F821 (injected by Snakemake)
request = {"spec": sm.params.spec, "dataset": sm.params.dataset, "seed": int(sm.wildcards.seed),
           "inputs": dict(sm.input), "outputs": dict(sm.output), "threads": sm.threads, "log": sm.log[0]}
if not delegate(request):
    from llmal.runner import run_al
    from llmal.workflow import log_executors, logged

    with logged(sm.log[0]):
        log_executors()   # lazy LLM annotators: batch ids, resumed batches and retries
        run_al(threads=sm.threads, spec=sm.params.spec, dataset=sm.params.dataset, seed=int(sm.wildcards.seed),
               inputs=dict(sm.input), outputs=dict(sm.output))
