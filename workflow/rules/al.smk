rule al_run:
    """One AL simulation: condition x encoder x seed. Name its run.json to rerun just it.

    Resources from what the run is (llmal.config.cluster): a linear head takes one core on the CPU
    partition with memory from its input size and joins the `al_cpu` job group (packed into
    group jobs by the cluster profile's group-components); fine-tuning takes GPUs on the GPU
    partition, one job per run.
    """
    input:
        unpack(al_inputs),
    output:
        rounds=f"{RUN_DIR}/rounds.csv",
        queried=f"{RUN_DIR}/queried.parquet",
        predictions=f"{RUN_DIR}/predictions.parquet",
        ledger=f"{RUN_DIR}/ledger.parquet",
        run=f"{RUN_DIR}/run.json",
    params:
        spec=lambda wc: run_spec(config, wc.condition, wc.encoder),
        dataset=DATASET,
    wildcard_constraints:
        # conditions that ask an API LLM during the run have a rule of their own (al_run_api)
        condition=rf"(?!(?:{NETWORK_CONDITION_RE})/){NAME}",
    threads: al_threads
    resources:
        **SITE_RESOURCES,
        gpu=al_gpus,
        gpu_slots=al_gpu_slots,
        slurm_partition=al_partition,
        gpu_model=al_gpu_model,
        cpus_per_gpu=al_cpus_per_gpu,
        mem_mb=al_mem_mb,
        runtime=al_runtime,
    group:
        al_group
    log:
        f"{RUN_DIR}/log.txt",
    conda:
        "../../envs/torch.yaml"
    script:
        "../../scripts/al_run.py"


# An AL run of a lazy condition whose annotators include an API LLM (openai, openai_batch) asks
# the API from inside the run, and compute nodes often have no internet: with a linear head it
# runs on the submit host (a local rule), unless the site names a `network_partition` whose nodes
# reach the API (llmal.config.cluster explains where fine-tuning ones go).
use rule al_run as al_run_api with:
    wildcard_constraints:
        condition=NETWORK_CONDITION_RE,
    group:
        None


localrules:
    al_run_api,


# The warm worker (llmal.warm): a local session starts one process that reads each run's inputs
# once and forks every AL run from them; each run stays its own job above (its files, its log, its
# rerun triggers). Not on a cluster (the jobs run elsewhere) and not with `warm_worker: false`.
WARM_WORKER = []


onstart:
    if config.get("warm_worker", True) and RUNS and not workflow.non_local_exec and workflow.is_main_process:
        runs = al_jobs_to_run()
        if runs != 0:
            WARM_WORKER.append(warm.start(os.getcwd(), runs))


onsuccess:
    for proc in WARM_WORKER:
        warm.stop(proc)


onerror:
    for proc in WARM_WORKER:
        warm.stop(proc)
