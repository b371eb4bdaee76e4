"""Rule prepare: dataset -> items.parquet + split.parquet."""
from llmal.data.prepare import prepare_dataset
from llmal.ner.data import prepare_ner
from llmal.tables import write_parquet
from llmal.workflow import logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    prepare = prepare_ner if sm.config.get("task") == "ner" else prepare_dataset
    items, split = prepare(sm.params.dataset, sm.params.labels, sm.params.split,
                           cache_dir=sm.params.dataset.get("cache_dir") or f"{sm.params.cache_dir}/datasets")
    print(f"{len(items)} items; split: {split['split'].value_counts().to_dict()}")
    write_parquet(items, sm.output.item_table)
    write_parquet(split, sm.output.split_table)
