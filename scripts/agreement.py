"""Rule agreement: every configured annotator's table -> tables/annotators.{csv,md}, pairwise_kappa.csv."""
from pathlib import Path

import pandas as pd

from llmal.agreement import DEFAULT_MIN_DEV_ITEMS, annotator_agreement, write_agreement
from llmal.config import reference_annotator
from llmal.ner.agreement import ner_agreement
from llmal.workflow import logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    config = sm.params.config
    annotations = {Path(p).stem: pd.read_parquet(p) for p in sm.input.annotations}
    settings = config.get("agreement") or {}
    # task ner: the same table at token level (token-level Fleiss' kappa, S2) plus entity F1
    if sm.config.get("task") == "ner":
        report = ner_agreement(annotations, pd.read_parquet(sm.input.item_table),
                               pd.read_parquet(sm.input.split_table), config["annotators"],
                               config["labels"]["names"], reference=reference_annotator(config),
                               splits=settings.get("splits") or ("pool", "dev"))
    else:
        report = annotator_agreement(annotations, pd.read_parquet(sm.input.item_table),
                                     pd.read_parquet(sm.input.split_table), config["annotators"],
                                     config["labels"]["names"], reference=reference_annotator(config),
                                     splits=settings.get("splits") or ("pool", "dev"),
                                     min_dev_items=int(settings.get("min_dev_items", DEFAULT_MIN_DEV_ITEMS)))
    paths = write_agreement(report, Path(sm.output[0]).parent)
    missing = [o for o in sm.output if not Path(o).exists()]
    if missing:
        raise RuntimeError(f"agreement did not write {missing}")
    print(report.table.to_string(index=False))
    print(report.summary)
