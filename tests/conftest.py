from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GAHD = ROOT.parent / "shared" / "data" / "gahd" / "gahd_disaggregated.csv"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; CI runs them too")


@pytest.fixture
def repo_root() -> Path:
    return ROOT


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900,
              env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real Snakemake CLI on the project's Snakefile inside `workdir`."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               **(env_extra or {}))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({res.returncode}):\n"
                             f"{res.stdout[-4000:]}\n{res.stderr[-6000:]}")
    return res


def write_config(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tiny_config(**overrides) -> dict:
    """A small offline grid: 2 conditions x 1 encoder x 2 seeds on 400 synthetic items."""
    config = {
        "dataset": {"name": "tiny", "kind": "demo", "n_items": 400, "seed": 1},
        "labels": {"names": ["not_hostile", "hostile"], "positive": "hostile"},
        "split": {"test": 0.25, "dev": 0.1, "seed": 0},
        "annotators": {
            "crowd": {"kind": "human", "mode": "sample", "cost_per_label": 0.1},
            "noisy": {"kind": "simulated", "error": {"hostile": 0.3, "not_hostile": 0.1},
                      "cost_per_label": 0.001, "seed": 3},
        },
        "encoders": {"tfidf": {"kind": "tfidf", "max_features": 3000, "min_df": 1}},
        "recipes": {"linear": {"kind": "logistic"}},
        "al": {"initial": 30, "batch": 30, "rounds": 2},
        "conditions": {
            "human_al": {"annotator": "crowd", "sampler": "entropy"},
            "noisy_full": {"annotator": "noisy", "sampler": "full"},
        },
        "seeds": [0, 1],
    }
    config.update(overrides)
    return config
