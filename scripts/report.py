"""Rule report: tables, figures and annotation statistics -> one self-contained HTML page."""
import json
from pathlib import Path

import pandas as pd

from llmal.report.html import write_report
from llmal.results.aggregate import annotation_summary
from llmal.tasks.classification.prepare import dataset_warnings
from llmal.workflow import logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    tables = Path(sm.input.tables[0]).parent
    figures = Path([t for t in sm.input.tables if "/figures/" in t][0]).parent
    runs_meta = [json.loads((Path(d) / "run.json").read_text()) for d in sm.params.run_dirs]
    annotations = {Path(p).stem: pd.read_parquet(p) for p in sm.input.annotations}
    split = pd.read_parquet(sm.input.split_table)
    items = pd.read_parquet(sm.input.item_table)
    warnings = dataset_warnings(items, split, [str(n) for n in sm.params.config["labels"]["names"]],
                                str(sm.params.config["dataset"]["name"]))
    write_report(sm.output[0], config=sm.params.config, tables_dir=tables, figures_dir=figures,
                 runs_meta=runs_meta, annotations=annotation_summary(annotations),
                 split_counts=split["split"].value_counts().to_dict(),
                 agreement_dir=Path(sm.input.agreement[0]).parent, warnings=warnings)
