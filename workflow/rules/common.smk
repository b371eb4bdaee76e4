# Helper functions shared by the rules. Nothing here imports pandas or torch: planning stays fast.
from llmal import warm
from llmal.config import cluster
from llmal.config.frontier import FRONTIER_FILES, frontier_enabled
from llmal.tasks.registry import capabilities_of
from llmal.stopping.registry import configured_stops
from llmal.tasks.registry import spec_task_key
from llmal.config import (annotation_targets, demonstration_encoder, member_annotators, run_demo_encoders,
                          run_spec, run_tables)

DATASET = config["dataset"]["name"]
# the task is a param of the rules whose work depends on it (a changed task reruns them); the
# default task adds no param, so results made before it was one are not rerun
TASK_PARAM = spec_task_key(config)
CAPABILITIES = capabilities_of(config)
RESULTS = f"results/{DATASET}"
RUNS = list(expand_runs(config))
NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"
RUN_DIR = f"{RESULTS}/runs/{{condition}}/{{encoder}}/seed{{seed}}"
RUN_FILES = ["rounds.csv", "queried.parquet", "predictions.parquet", "ledger.parquet", "run.json"]
ITEMS = f"{RESULTS}/data/items.parquet"
SPLIT = f"{RESULTS}/data/split.parquet"

wildcard_constraints:
    condition=NAME,
    encoder=NAME,
    annotator=NAME,
    seed=r"\d+",


def embeddings_file(encoder):
    return f"{RESULTS}/embeddings/{encoder}.npz"


def annotation_file(annotator):
    return f"{RESULTS}/annotations/{annotator}.parquet"


def dataset_inputs(wildcards):
    """Local dataset files are real inputs (`path`, or every file of `files`): a missing or
    changed file fails the plan or reruns prepare."""
    ds = config["dataset"]
    if ds["kind"] == "masakhaner":   # a directory of train/dev/test.txt, or a download
        return [f"{ds['path']}/{n}.txt" for n in ("train", "dev", "test")] if ds.get("path") else []
    if ds["kind"] not in ("file", "gahd", "conll"):
        return []
    if ds.get("path"):
        return [ds["path"]]
    return [f["path"] for f in ds.get("files") or []]


def annotate_inputs(wildcards):
    spec = config["annotators"][wildcards.annotator]
    inputs = {"item_table": ITEMS, "split_table": SPLIT}
    encoder = demonstration_encoder(config, spec)
    if encoder:
        inputs["embeddings"] = embeddings_file(encoder)
    if spec["kind"] == "precomputed" and spec.get("file"):
        inputs["source"] = spec["file"]   # recorded answers: a changed file reruns the job
    members = member_annotators(spec)
    if members:  # a mixture aggregates (a routed annotator routes) its members' tables, in this order
        inputs["members"] = [annotation_file(m) for m in members]
    return inputs


def annotate_config(wildcards):
    """What annotation reads of the config, and nothing else (a param: its rerun trigger): the
    labels; for an LLM, the price of its own model and the cache directory."""
    spec = config["annotators"][wildcards.annotator]
    out = {"labels": config["labels"]}
    # agreement.splits beyond pool and dev: those items are annotated too (for agreement only)
    extra = [s for s in (config.get("agreement") or {}).get("splits") or [] if s not in ("pool", "dev")]
    if extra:
        out["agreement"] = {"splits": config["agreement"]["splits"]}
    if "model" in spec and spec["kind"] not in ("human", "simulated", "mixture"):
        prices = config.get("prices") or {}
        out["prices"] = {m: p for m, p in prices.items() if m == str(spec["model"])}
        out["cache_dir"] = config.get("cache_dir", ".llmal-cache")
        if config.get("cache_mode", "local") != "local":
            out["cache_mode"] = config["cache_mode"]
    return out


def annotate_retry_token(wildcards):
    """Grows when the last job left transiently failed rows: a changed param reruns the job."""
    from llmal.llm.retry import read_token

    return read_token(annotation_file(wildcards.annotator))


def al_inputs(wildcards):
    """Items, split, the annotation tables the run replays (its annotator's when precomputed;
    human/simulated members' when lazy), the classifier's features and the embeddings its lazy
    LLM annotators rank demonstrations with."""
    inputs = {"item_table": ITEMS, "split_table": SPLIT,
              "tables": [annotation_file(a) for a in run_tables(config, wildcards.condition)]}
    if config["encoders"][wildcards.encoder]["kind"] != "transformer":
        inputs["embeddings"] = embeddings_file(wildcards.encoder)
    demo = run_demo_encoders(config, wildcards.condition)
    if demo:
        inputs["demo_embeddings"] = [embeddings_file(e) for e in demo]
    return inputs


# --- resources: what each job asks a scheduler for (llmal.config.cluster; SLURM site settings from
# profiles/slurm/site.yaml or LLMAL_SLURM_* variables, see profiles/slurm/README.md)
try:
    SITE = cluster.site_settings(workflow.basedir)
except cluster.SiteError as e:
    raise WorkflowError(str(e)) from None
SITE_RESOURCES = cluster.static_resources(SITE)


def al_gpus(wildcards):
    """Fine-tuning (or an in-process vLLM) asks the scheduler for GPUs; a linear head needs none."""
    return cluster.al_gpus(config, wildcards.condition)


def al_gpu_slots(wildcards):
    """The workstation's GPU share (profiles/default caps `gpu_slots` per GPU); never a cap on a
    cluster, where the scheduler hands out whole GPUs."""
    return 0 if workflow.non_local_exec else al_gpus(wildcards)


def al_threads(wildcards):
    return cluster.al_threads(config, wildcards.condition)


def al_partition(wildcards):
    return cluster.al_partition(config, wildcards.condition, SITE)


def al_gpu_model(wildcards):
    return cluster.gpu_model(SITE, al_gpus(wildcards))


def al_cpus_per_gpu(wildcards):
    return cluster.cpus_per_gpu(SITE, al_gpus(wildcards))


def al_mem_mb(wildcards, input):
    return cluster.mem_mb(input.size_mb, al_gpus(wildcards))


def al_runtime(wildcards):
    return cluster.DEFAULT_RUNTIME["finetune" if al_gpus(wildcards) else "linear"]


def al_group(wildcards):
    return cluster.al_group(config, wildcards.condition, SITE)


def annotate_gpus(wildcards):
    return cluster.annotate_gpus(config["annotators"][wildcards.annotator])


def annotate_partition(wildcards):
    return SITE.get("gpu_partition" if annotate_gpus(wildcards) else "cpu_partition", "")


# conditions whose AL runs ask an API LLM from inside the run, and annotators that need compute
NETWORK_CONDITIONS = [c for c in config["conditions"] if cluster.runs_on_submit_host(config, c, SITE)]
if workflow.non_local_exec:
    for warning in cluster.placement_warnings(config, SITE):
        print(f"SLURM: {warning}", file=sys.stderr)
NETWORK_CONDITION_RE = cluster.names_regex(NETWORK_CONDITIONS)
COMPUTE_ANNOTATORS = [a for a, s in config["annotators"].items() if cluster.annotator_needs_compute(s)]
COMPUTE_ANNOTATOR_RE = cluster.names_regex(COMPUTE_ANNOTATORS)


def run_outputs(run, names=RUN_FILES):
    return [f"{RESULTS}/runs/{run.condition}/{run.encoder}/seed{run.seed}/{n}" for n in names]


ALL_RUN_FILES = [f for run in RUNS for f in run_outputs(run)]


def summary_config():
    """What aggregate and report read of the config (their params, so their rerun trigger): an
    encoder no run uses, an annotator no condition names or a price are not part of it."""
    used_encoders = {run.encoder for run in RUNS}
    named = {c["annotator"] for c in config["conditions"].values()}
    return {
        **{k: config[k] for k in ("task", "dataset", "labels", "seeds", "conditions", "aggregate") if k in config},
        # the global stopping criteria (only with al.stop: other configs keep their params)
        **({"al": {"stop": config["al"]["stop"]}} if (config.get("al") or {}).get("stop") else {}),
        "encoders": {e: s for e, s in config["encoders"].items() if e in used_encoders},
        "annotators": {a: s for a, s in config["annotators"].items() if a in named},
    }
# the annotation tables made up front: those the runs replay (lazy LLM annotators are asked
# during the runs, about the items they query only)
ALL_ANNOTATIONS = sorted({annotation_file(a) for c in config["conditions"] for a in run_tables(config, c)})

# declaring is not paying: the agreement table compares the annotators conditions use (with their
# mixture members), the reference and the candidates `agreement.annotators` lists (S2); an
# annotator in none of these is never annotated
ANNOTATED = list(annotation_targets(config))
AGREEMENT_CONFIG = {
    "annotators": {a: s for a, s in config["annotators"].items() if a in ANNOTATED},
    **{k: config.get(k) for k in ("labels", "agreement")},
}
CONFIGURED_ANNOTATIONS = [annotation_file(a) for a in ANNOTATED]
AGREEMENT_OUTPUTS = [f"{RESULTS}/tables/{n}" for n in (
    "annotators.csv", "annotators.md", "pairwise_kappa.csv", "agreement.json")]


# Snakemake's own report (`snakemake --report report.zip`): the results it shows, each with its
# caption in workflow/report/, grouped by category
REPORTED = {
    "tables/summary.csv": ("summary.rst", "1. Results", "Summary"),
    "tables/significance.csv": ("significance.rst", "1. Results", "Significance"),
    "tables/matched_budget.csv": ("matched_budget.rst", "1. Results", "Matched budgets"),
    "figures/learning_curve.png": ("learning_curve.rst", "2. Learning curves", "Labels"),
    "figures/learning_curve_cost.png": ("learning_curve_cost.rst", "2. Learning curves", "Dollars"),
    "figures/aulc.png": ("aulc.rst", "2. Learning curves", "Area under the curve"),
    "figures/fpfn.png": ("fpfn.rst", "3. Errors", "FP and FN"),
    "tables/fpfn.csv": ("fpfn_table.rst", "3. Errors", "FP and FN"),
    "figures/errors_by_topic.png": ("errors_by_topic.rst", "3. Errors", "Topics"),
    "tables/errors_by_topic.csv": ("errors_by_topic_table.rst", "3. Errors", "Topics"),
    "figures/confusion.png": ("confusion.rst", "3. Errors", "Confusion"),
    "tables/annotators.csv": ("annotators.rst", "4. Annotators", "Agreement"),
    "figures/frontier.png": ("frontier.rst", "5. Cost and quality", "Frontier"),
    "tables/frontier.csv": ("frontier_table.rst", "5. Cost and quality", "Frontier"),
    "tables/stopping.csv": ("stopping.rst", "5. Cost and quality", "When to stop"),
}


def reported(paths):
    """`paths` with the REPORTED ones flagged for Snakemake's report."""
    out = []
    for path in paths:
        entry = REPORTED.get(str(path).removeprefix(f"{RESULTS}/"))
        if entry is not None:
            caption, category, subcategory = entry
            path = report(path, caption=f"../report/{caption}", category=category, subcategory=subcategory)
        out.append(path)
    return out


def al_jobs_to_run():
    """The AL runs this session will run (the worker ends after them, freeing its memory for
    aggregate); None when Snakemake's DAG does not say."""
    try:
        return sum(1 for job in workflow.dag.needrun_jobs() if job.rule.name in ("al_run", "al_run_api"))
    except Exception:
        return None
