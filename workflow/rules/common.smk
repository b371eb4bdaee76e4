# Helper functions shared by the rules. Nothing here imports pandas or torch: planning stays fast.
from llmal.config import (annotation_targets, demonstration_encoder, mixture_members, recipe_of,
                          run_demo_encoders, run_spec, run_tables)

DATASET = config["dataset"]["name"]
RESULTS = f"results/{DATASET}"
RUNS = list(expand_runs(config))
NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"
RUN_DIR = RESULTS + "/runs/{condition}/{encoder}/seed{seed}"
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
    members = mixture_members(spec)
    if members:  # a mixture aggregates its members' annotation tables, in this order
        inputs["members"] = [annotation_file(m) for m in members]
    return inputs


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


def al_gpus(wildcards):
    """Fine-tuning asks the scheduler for GPUs; a linear head on frozen features needs none."""
    _, recipe = recipe_of(config, wildcards.condition)
    return int(recipe.get("gpus", 1)) if recipe["kind"] == "finetune" else 0


def al_threads(wildcards):
    """A linear head needs one core; fine-tuning on a CPU uses two (capped by --cores)."""
    _, recipe = recipe_of(config, wildcards.condition)
    return 2 if recipe["kind"] == "finetune" else 1


def run_outputs(run, names=RUN_FILES):
    return [f"{RESULTS}/runs/{run.condition}/{run.encoder}/seed{run.seed}/{n}" for n in names]


ALL_RUN_FILES = [f for run in RUNS for f in run_outputs(run)]
# the annotation tables made up front: those the runs replay (lazy LLM annotators are asked
# during the runs, about the items they query only)
ALL_ANNOTATIONS = sorted({annotation_file(a) for c in config["conditions"] for a in run_tables(config, c)})

# declaring is not paying: the agreement table compares the annotators conditions use (with their
# mixture members), the reference and the candidates `agreement.annotators` lists (S2); an
# annotator in none of these is never annotated
ANNOTATED = list(annotation_targets(config))
CONFIGURED_ANNOTATIONS = [annotation_file(a) for a in ANNOTATED]
AGREEMENT_OUTPUTS = [f"{RESULTS}/tables/{n}" for n in (
    "annotators.csv", "annotators.md", "pairwise_kappa.csv", "agreement.json")]
