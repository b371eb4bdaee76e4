"""`snakemake --profile profiles/slurm` against a real one-node SLURM (tests/slurm_cluster.py):
munged, slurmctld and slurmd from Debian's slurm-wlm, fake GPUs, no accounting (sacct exists
but answers "accounting storage is disabled": the case that hung with sacct as status command).

One grid, run once through SLURM and once locally: 5 linear-head conditions x 2 seeds and one
fine-tuning condition (tiny BERT) x 2 seeds = 12 AL runs.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, snakemake, tiny_config, write_config
from slurm_cluster import SlurmCluster, SlurmUnavailable

from llmal.models.tiny import make_tiny_bert
from llmal.tasks.classification.demo import generate_demo

SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
LINEAR = [("crowd", "entropy"), ("noisy", "full"), ("noisy", "random"), ("crowd", "margin"), ("noisy", "entropy")]
SEEDS = [0, 1]
N_RUNS = (len(LINEAR) + 1) * len(SEEDS)


def grid_config(model: Path) -> dict:
    conditions = {f"lin{i}": {"annotator": a, "sampler": s, "encoders": ["tfidf"]} for i, (a, s) in enumerate(LINEAR)}
    conditions["ft"] = {"annotator": "crowd", "sampler": "entropy", "recipe": "ft", "encoders": ["tinybert"],
                        "al": {"rounds": 0}}
    return tiny_config(
        dataset={"name": "tiny", "kind": "demo", "n_items": 300, "seed": 1},
        encoders={"tfidf": {"kind": "tfidf", "max_features": 3000, "min_df": 1},
                  "tinybert": {"kind": "transformer", "model": str(model), "max_length": 32,
                               "batch_size": 16, "lr": 1.0e-3, "epochs": 1}},
        recipes={"linear": {"kind": "logistic"}, "ft": {"kind": "finetune", "patience": 1}},
        conditions=conditions, al={"initial": 30, "batch": 30, "rounds": 1}, seeds=SEEDS)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        reason = "snakemake-executor-plugin-slurm is not installed (LLMAL_EXTRAS=slurm bin/setup)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    root = Path(f"/tmp/llmal-slurm-{os.getpid()}")   # short: munge's socket path has a length limit
    try:
        c = SlurmCluster(root).start()
    except SlurmUnavailable as e:
        print(f"SKIP: SLURM cannot be started here: {e}")
        pytest.skip(f"SLURM cannot be started here: {e}")
    yield c
    c.stop()
    assert not c.pids


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, str]:
    """The site settings a user of the test cluster would write (profiles/slurm/site.example.yaml)."""
    path = tmp_path_factory.mktemp("site") / "site.yaml"
    path.write_text("cpu_partition: cpu\ngpu_partition: gpu\ncpus_per_gpu: 1\ngroup_cores: 2\nstatus_seconds: 3\n")
    return {"LLMAL_SLURM_SITE": str(path)}


def submissions(log: str) -> list[tuple[str, str, str]]:
    return SUBMITTED.findall(log)


@pytest.fixture(scope="module")
def grids(tmp_path_factory, cluster, site):
    base = tmp_path_factory.mktemp("slurmgrid")
    model = make_tiny_bert(base / "tiny-bert", generate_demo(300, seed=1)["text"].tolist(),
                           vocab_size=600, hidden=32, layers=1, heads=2)
    on_slurm, local = base / "slurm", base / "local"
    for work in (on_slurm, local):
        write_config(work, grid_config(model))
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:   # the local twin runs while SLURM jobs wait in the queue
        slurm_run = pool.submit(snakemake, on_slurm, "--profile", "profiles/slurm",
                                env_extra={**cluster.env, **site}, timeout=600)
        pool.submit(snakemake, local).result()
        res = slurm_run.result()
    seconds = time.perf_counter() - start
    subs = submissions(res.stdout + res.stderr)
    print(f"\nSLURM grid: {len(subs)} sbatch submissions for {N_RUNS} AL runs in {seconds:.0f} s")
    return {"slurm": on_slurm, "local": local, "log": res.stdout + res.stderr, "subs": subs}


def test_jobs_go_through_sbatch_packed_in_groups(grids, cluster):
    subs = grids["subs"]
    ids = [jobid for _, jobid, _ in subs]
    # every submission the log names reached the controller, and nothing else did
    assert sorted(ids, key=int) == sorted(cluster.job_ids(), key=int)
    # prepare, annotate (human, simulated), agreement, aggregate, report are local rules: only
    # embed, the group of linear runs and one job per fine-tuning run are submitted
    kinds = sorted(Path(log).parts[-3] if "group_" not in log else "group" for _, _, log in subs)
    assert kinds == ["group", "rule_al_run", "rule_al_run", "rule_embed"], subs
    assert len(subs) * 3 <= N_RUNS
    for rule in ("prepare", "annotate", "agreement", "aggregate", "report"):
        assert f"localrule {rule}:" in grids["log"]


def test_partitions_gpus_and_run_records(grids, cluster):
    runs = grids["slurm"] / "results" / "tiny" / "runs"
    jobs = {}
    for _, jobid, _ in grids["subs"]:
        out = cluster._run("scontrol", "show", "job", jobid).stdout
        jobs[jobid] = dict(re.findall(r"(\w+)=(\S+)", out))
    for cond, enc in [("ft", "tinybert"), ("lin0", "tfidf")]:
        for seed in SEEDS:
            run = json.loads((runs / cond / enc / f"seed{seed}" / "run.json").read_text())
            job = jobs[run["slurm_job_id"]]
            assert run["host"] and job["NodeList"] == run["host"].split(".")[0]
            if cond == "ft":   # a GPU on the GPU partition, cores per GPU from the site file
                assert job["Partition"] == "gpu" and job["TresPerJob"] == "gres:gpu:1"
                assert job["CpusPerTres"] == "gres:gpu:1"
            else:              # one core per linear run; the group job gets group_cores
                assert job["Partition"] == "cpu" and "TresPerJob" not in job and job["NumCPUs"] == "2"


def test_gpu_jobs_run_concurrently(grids, cluster):
    """No serial cap: the workstation profile's gpu_slots never binds under the cluster profile,
    so both fine-tuning jobs are submitted together and SLURM runs them side by side."""
    log = grids["log"]
    ft = [(jobid, log_path) for _, jobid, log_path in grids["subs"] if "/rule_al_run/ft_" in log_path]
    assert len(ft) == 2
    first_ft_done = min(m.start() for m in re.finditer(r"Finished jobid: \d+ \(Rule: al_run\)", log))
    assert all(log.index(f"SLURM jobid {jobid} ") < first_ft_done for jobid, _ in ft)
    spans = []
    for jobid, _ in ft:
        out = cluster._run("scontrol", "show", "job", jobid).stdout
        fields = dict(re.findall(r"(\w+)=(\S+)", out))
        spans.append((fields["StartTime"], fields["EndTime"]))
    (s1, e1), (s2, e2) = spans
    assert s1 < e2 and s2 < e1, f"fine-tuning jobs ran one after the other: {spans}"


def test_tables_equal_a_local_run(grids):
    for name in ("summary.csv", "learning_curve.csv", "aulc.csv", "confusion.csv", "per_class.csv"):
        a = pd.read_csv(grids["slurm"] / "results" / "tiny" / "tables" / name)
        b = pd.read_csv(grids["local"] / "results" / "tiny" / "tables" / name)
        pd.testing.assert_frame_equal(a, b, obj=name)
    for pred in (grids["slurm"] / "results" / "tiny" / "runs").rglob("predictions.parquet"):
        twin = grids["local"] / pred.relative_to(grids["slurm"])
        pd.testing.assert_frame_equal(pd.read_parquet(pred), pd.read_parquet(twin), obj=str(pred))


def test_rerunning_one_run_submits_exactly_one_job(grids, cluster, site):
    target = "results/tiny/runs/lin1/tfidf/seed1/run.json"
    before = json.loads((grids["slurm"] / target).read_text())
    res = snakemake(grids["slurm"], "--profile", "profiles/slurm", target, "--forcerun", "al_run",
                    env_extra={**cluster.env, **site}, timeout=300)
    subs = submissions(res.stdout + res.stderr)
    print(f"\nrerun of one run: {len(subs)} sbatch submission(s)")
    assert len(subs) == 1
    after = json.loads((grids["slurm"] / target).read_text())
    assert after["slurm_job_id"] == subs[0][1] != before["slurm_job_id"]
    assert after["final"]["f1_macro"] == before["final"]["f1_macro"]


def test_planning_stays_fast_without_a_controller(grids, cluster, tmp_path):
    """Issue 12.9: the SLURM client installed, its controller down. The plugin's import-time
    `scontrol show config` probe waits ~9 s for it; the guard bin/setup installs (the exact
    .pth line of bin/setup, processed as a site dir) skips it. The paper grid plans in < 10 s."""
    line = next(ln for ln in (ROOT / "bin" / "setup").read_text().splitlines() if "echo '" in ln and "slurm_guard" in ln)
    pth = re.search(r"echo '([^']+)'", line).group(1)
    sitedir = tmp_path / "site"
    sitedir.mkdir()
    (sitedir / "llmal-slurm-guard.pth").write_text(pth + "\n")
    work = tmp_path / "paper"
    work.mkdir()
    (work / "config.yaml").write_text((ROOT / "config" / "hakimi2026.yaml").read_text())
    cluster.stop_controller()
    env = dict(os.environ, **cluster.env, PYTHONPATH=str(ROOT / "src"), OPENAI_API_KEY="sk-plan-only")
    probe = cluster._run("scontrol", "show", "config", timeout=60)
    assert probe.returncode != 0      # really no controller
    import subprocess

    def plan(guarded: bool) -> float:
        pre = f"import site; site.addsitedir({str(sitedir)!r}); " if guarded else ""
        code = (pre + "import sys; from snakemake.cli import main; sys.argv = ['snakemake', '-s', "
                f"{str(ROOT / 'Snakefile')!r}, '--directory', {str(work)!r}, '--configfile', "
                f"{str(work / 'config.yaml')!r}, '-n', '--quiet', 'rules']; main()")
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stderr[-3000:]
        assert re.search(r"al_run\s+280", res.stdout), res.stdout[-2000:]
        return time.perf_counter() - start

    guarded = plan(True)
    print(f"\npaper grid plan without a controller: {guarded:.1f} s with the guard")
    assert guarded < 10.0
