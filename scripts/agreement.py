"""Rule agreement: every configured annotator's table -> tables/annotators.{csv,md}, pairwise_kappa.csv."""
from pathlib import Path

import pandas as pd

from llmal.config import reference_annotator
from llmal.report.files import write_agreement
from llmal.results.agreement import task_agreement
from llmal.tasks.registry import task_named
from llmal.workflow import logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    config = sm.params.config
    annotations = {Path(p).stem: pd.read_parquet(p) for p in sm.input.annotations}
    report = task_agreement(task_named(getattr(sm.params, "task", None)), annotations,
                            pd.read_parquet(sm.input.item_table), pd.read_parquet(sm.input.split_table), config,
                            reference=reference_annotator(config))
    paths = write_agreement(report, Path(sm.output[0]).parent)
    missing = [o for o in sm.output if not Path(o).exists()]
    if missing:
        raise RuntimeError(f"agreement did not write {missing}")
    print(report.table.to_string(index=False))
    print(report.summary)
