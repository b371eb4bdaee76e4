"""Rule prepare: dataset -> items.parquet + split.parquet."""
from llmal.contracts import write_parquet
from llmal.data.prepare import prepare
from llmal.tasks.registry import task_named
from llmal.workflow import logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    task = task_named(getattr(sm.params, "task", None))
    items, split = prepare(task, sm.params.dataset, sm.params.labels, sm.params.split,
                           cache_dir=sm.params.dataset.get("cache_dir") or f"{sm.params.cache_dir}/datasets")
    print(f"{len(items)} {task.capabilities.item_noun}; split: {split['split'].value_counts().to_dict()}")
    write_parquet(items, sm.output.item_table)
    write_parquet(split, sm.output.split_table)
