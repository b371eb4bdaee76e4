"""Where each job runs and what it asks a scheduler for: per-job resources from what the job is.

The rules of the workflow declare generic resources (threads, `mem_mb`, `runtime`, `gpu`) and,
for SLURM, `slurm_partition`, `gpu_model`, `cpus_per_gpu`, `slurm_account`, `qos` and
`constraint`. The site's names for these (partitions, account, QoS, GPU model, constraint) come
from one small untracked YAML file, `profiles/slurm/site.yaml` (another path in
`LLMAL_SLURM_SITE`), and from environment variables `LLMAL_SLURM_<KEY>` (upper case), which win
over the file. Nothing here imports pandas or torch: planning stays fast.

Placement:
- an AL run with a linear head: CPU partition, 1 thread, memory from its input size;
- an AL run that fine-tunes (or runs a lazy vLLM annotator in-process): GPU partition, `gpu`,
  optional `gpu_model`, `cpus_per_gpu`;
- an AL run whose annotator tree holds a network LLM (`openai`, `openai_batch`) in lazy mode
  asks the API from inside the run, and compute nodes often have no internet. Where
  `network_partition` names a partition whose nodes reach the API, such runs go there (with a
  GPU when they fine-tune). Otherwise a linear-head run stays on the submit host (a local rule:
  one core, mostly waiting on the API), and a fine-tuning run goes to the GPU partition, whose
  nodes then need outbound HTTPS to the API: the plan warns about it (the alternative is
  `annotation: precomputed`, which annotates the pool up front on the submit host);
- annotation by vLLM or a local GGUF model: a cluster job (vLLM with a GPU); every other
  annotator (human, simulated, mixture, Batch API and online APIs) runs on the submit host.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from llmal.annotate.kinds import annotator_tree
from llmal.config.grid import annotation_mode, recipe_of

SITE_KEYS = {
    "cpu_partition": "partition for CPU jobs (linear-head AL runs, embeddings, GGUF annotation)",
    "gpu_partition": "partition for GPU jobs (fine-tuning, vLLM)",
    "network_partition": "partition whose nodes reach the LLM API (lazy API conditions); "
                         "unset: those runs stay on the submit host",
    "account": "sbatch --account (unset: the plugin guesses it, or none)",
    "qos": "sbatch --qos",
    "constraint": "sbatch --constraint (node features)",
    "gpu_model": "GPU type for --gpus=<model>:<n> (unset: any GPU)",
    "cpus_per_gpu": "CPU cores per GPU for GPU jobs (default 4)",
    "group_size": "AL runs packed into one CPU submission (default 10; 1 turns grouping off)",
    "group_cores": "cores of one group job: its AL runs run this many at a time (default 8)",
    "status_command": "squeue (default: works with and without accounting) or sacct",
    "status_seconds": "seconds before the first status check of a job (default 20)",
}
NETWORK_LLM_KINDS = ("openai", "openai_batch")
# annotators that need compute (a cluster job); the others run on the submit host
COMPUTE_ANNOTATOR_KINDS = ("vllm", "local")
DEFAULT_RUNTIME = {"linear": 120, "finetune": 480, "embed": 120, "annotate": 480}


class SiteError(ValueError):
    pass


def site_file(basedir: str | Path) -> Path:
    return Path(os.environ.get("LLMAL_SLURM_SITE") or Path(basedir) / "profiles" / "slurm" / "site.yaml")


def site_settings(basedir: str | Path, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Site settings: the site file (when present), then `LLMAL_SLURM_<KEY>` variables on top."""
    environ = os.environ if environ is None else environ
    path = site_file(basedir)
    settings: dict[str, Any] = {}
    if path.is_file():
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise SiteError(f"{path}: the SLURM site file must be a mapping of keys")
        unknown = sorted(set(loaded) - set(SITE_KEYS))
        if unknown:
            raise SiteError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(SITE_KEYS)}")
        settings.update({k: v for k, v in loaded.items() if v not in (None, "")})
    for key in SITE_KEYS:
        value = environ.get(f"LLMAL_SLURM_{key.upper()}")
        if value not in (None, ""):
            settings[key] = value
    for key in ("cpus_per_gpu", "group_size", "group_cores", "status_seconds"):
        if key in settings:
            try:
                settings[key] = int(settings[key])
            except (TypeError, ValueError):
                raise SiteError(f"SLURM site setting {key!r} must be an integer, got {settings[key]!r}") from None
            if settings[key] < 1:
                raise SiteError(f"SLURM site setting {key!r} must be at least 1, got {settings[key]}")
    return settings


def profile_values(basedir: str | Path = ".") -> dict[str, Any]:
    """What profiles/slurm/config.yaml fills in from the site settings (it runs this through YTE)."""
    site = site_settings(basedir)
    status = str(site.get("status_command", "squeue"))
    if status not in ("squeue", "sacct"):
        raise SiteError(f"SLURM site setting 'status_command' must be squeue or sacct, got {status!r}")
    return {"status_command": status, "status_seconds": int(site.get("status_seconds", 20)),
            "group_size": int(site.get("group_size", 10)), "group_cores": int(site.get("group_cores", 8))}


def workstation_gpu_slots(environ: dict[str, str] | None = None) -> int:
    """profiles/default's `gpu_slots`: fine-tuning jobs that share one GPU (`LLMAL_GPU_SLOTS`,
    default 4) times the GPUs visible (`CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L`; at least 1)."""
    import shutil
    import subprocess

    environ = os.environ if environ is None else environ
    per_gpu = int(environ.get("LLMAL_GPU_SLOTS") or 4)
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        n_gpus = len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    elif shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        n_gpus = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    else:
        n_gpus = 0
    return per_gpu * max(n_gpus, 1)


def static_resources(site: dict[str, Any]) -> dict[str, str]:
    """Resources every cluster job carries: account, QoS, constraint, only where set."""
    names = {"account": "slurm_account", "qos": "qos", "constraint": "constraint"}
    return {res: str(site[key]) for key, res in names.items() if site.get(key)}


def _tree_kinds(config: dict[str, Any], condition: str) -> set[str]:
    annotators = config["annotators"]
    return {annotators[a]["kind"] for a in annotator_tree(annotators, config["conditions"][condition]["annotator"])}


def asks_network_llm(config: dict[str, Any], condition: str) -> bool:
    """A lazy condition whose annotator tree holds an API LLM calls it from inside the AL run."""
    return annotation_mode(config, condition) == "lazy" and bool(_tree_kinds(config, condition) & set(NETWORK_LLM_KINDS))


def al_gpus(config: dict[str, Any], condition: str) -> int:
    """GPUs an AL run asks for: the fine-tuning recipe's `gpus`, at least one for a lazy vLLM."""
    _, recipe = recipe_of(config, condition)
    gpus = int(recipe.get("gpus", 1)) if recipe["kind"] == "finetune" else 0
    if annotation_mode(config, condition) == "lazy" and "vllm" in _tree_kinds(config, condition):
        gpus = max(gpus, 1)
    return gpus


def al_threads(config: dict[str, Any], condition: str) -> int:
    """A linear head needs one core; fine-tuning on a CPU uses two (capped by --cores)."""
    _, recipe = recipe_of(config, condition)
    return 2 if recipe["kind"] == "finetune" else 1


def runs_on_submit_host(config: dict[str, Any], condition: str, site: dict[str, Any]) -> bool:
    """A lazy API condition with a linear head, where no partition is known to reach the API."""
    return (asks_network_llm(config, condition) and not al_gpus(config, condition)
            and not site.get("network_partition"))


def placement_warnings(config: dict[str, Any], site: dict[str, Any]) -> list[str]:
    """Cluster runs that need the API from a GPU node when no `network_partition` is set."""
    if site.get("network_partition"):
        return []
    conds = [c for c in config["conditions"] if asks_network_llm(config, c) and al_gpus(config, c)]
    if not conds:
        return []
    return [f"conditions {', '.join(conds)} fine-tune and ask an API LLM during the run: their jobs go "
            f"to the GPU partition {site.get('gpu_partition') or '(default)'}, whose nodes must reach the "
            "API; set the SLURM site setting network_partition to a partition with internet, or "
            "`annotation: precomputed` to annotate the pool up front on the submit host"]


def al_partition(config: dict[str, Any], condition: str, site: dict[str, Any]) -> str:
    if asks_network_llm(config, condition) and site.get("network_partition"):
        return str(site["network_partition"])
    key = "gpu_partition" if al_gpus(config, condition) else "cpu_partition"
    return str(site.get(key) or "")


def al_group(config: dict[str, Any], condition: str, site: dict[str, Any]) -> str | None:
    """CPU runs are packed into group jobs (`group-components` sizes them); GPU runs are one
    job each, so that many of them run at once on as many GPUs."""
    if al_gpus(config, condition) or int(site.get("group_size", 10)) <= 1:
        return None
    return "al_cpu"


def mem_mb(input_mb: float, gpus: int) -> int:
    """Memory for a job reading `input_mb` of (compressed) tables: parquet and npz expand
    several-fold in memory; fine-tuning adds the model, optimiser state and tokenised texts."""
    base = 4096 if gpus else 1024
    return int(base + 8 * max(0.0, float(input_mb)))


def gpu_model(site: dict[str, Any], gpus: int) -> str:
    return str(site.get("gpu_model") or "") if gpus else ""


def cpus_per_gpu(site: dict[str, Any], gpus: int) -> int:
    return int(site.get("cpus_per_gpu", 4)) if gpus else 0


def annotator_needs_compute(spec: dict[str, Any]) -> bool:
    return spec["kind"] in COMPUTE_ANNOTATOR_KINDS


def annotate_gpus(spec: dict[str, Any]) -> int:
    if spec["kind"] != "vllm":
        return 0
    args = spec.get("engine_args") or {}
    return int(args.get("tensor_parallel_size", 1))


def names_regex(names: list[str]) -> str:
    """A wildcard constraint matching exactly `names` (none: a regex that matches nothing)."""
    import re

    return "|".join(re.escape(n) for n in sorted(names)) or "(?!x)x"
