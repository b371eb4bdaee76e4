"""docs/tutorial.md works as written: its bash blocks run in order in a fresh folder (snakemake
is pointed at the repository's Snakefile, which the tutorial runs from the repository root)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def tutorial_commands() -> list[str]:
    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_tutorial_commands_run_from_a_csv_to_a_report(tmp_path):
    blocks = tutorial_commands()
    assert len(blocks) == 6 and "llmal init data/tutorial.csv" in blocks[1]
    bin_dir = tmp_path / "bin"                   # `llmal` and `python` as the tutorial's venv has them
    bin_dir.mkdir()
    (bin_dir / "llmal").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m llmal.cli "$@"\n')
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "snakemake").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m snakemake -s "{ROOT}/Snakefile" "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT / "src"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    outputs = []
    for block in blocks:
        res = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{block}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        outputs.append(res.stdout)
    assert "  gold                  is hostile" in outputs[1]
    assert "labels                'NO', 'YES'" in outputs[1]
    assert outputs[2].strip() == "config/tutorial.yaml: no problems found"
    results = tmp_path / "results" / "tutorial"
    html = (results / "report.html").read_text()
    assert "Findings" in html
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert len(summary) == 4 and set(summary["n_seeds"]) == {3}
    assert (results / "snakemake-report.zip").stat().st_size > 10_000
