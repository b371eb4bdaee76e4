"""Rule annotate: one annotator over the pool and dev items."""
import pandas as pd

from llmal.annotate.kinds import member_annotators
from llmal.annotate.run import annotate
from llmal.contracts import annotation_cost, write_parquet
from llmal.llm.fetch import settle_after_report
from llmal.llm.retry import record_failures
from llmal.tasks.registry import task_named
from llmal.workflow import log_executors, logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
# an LLM request possibly billed without an answer (also in a killed earlier attempt of this job)
# stays recorded in the response cache until the table that counts it is written
with logged(sm.log[0]), settle_after_report():
    log_executors()   # batch ids, resumed batches and retries
    # a mixture's members (a routed annotator's primary and fallback), in the order of its spec
    # (annotate_inputs lists their tables that way)
    members = dict(zip(member_annotators(sm.params.spec), map(pd.read_parquet, sm.input.get("members", []))))
    table = annotate(pd.read_parquet(sm.input.item_table), pd.read_parquet(sm.input.split_table),
                     sm.params.spec, sm.params.config, name=sm.wildcards.annotator,
                     embeddings_path=sm.input.get("embeddings"), member_tables=members,
                     task=task_named(getattr(sm.params, "task", None)))
    counts = table["status"].value_counts().to_dict()
    print(f"{sm.wildcards.annotator}: {len(table)} items, {counts}, "
          f"cost ${annotation_cost(table):.4f}")
    llm = table.attrs.get("llm")  # an LLM annotator's run statistics, kept in the parquet too
    if llm:
        print(f"{sm.wildcards.annotator}: sent {llm['sent']}, cached {llm['cached']}, waited for "
              f"other jobs {llm['waited']}, possibly billed without an answer {llm['maybe_billed']} "
              f"({llm['maybe_billed_timeouts']} timed out, {llm['billed_unreadable']} unreadable, "
              f"{llm['maybe_billed_lost_in_flight']} in flight at a kill)")
    write_parquet(table, sm.output[0])
    failed = table[table["status"] == "failed"]
    transient = record_failures(sm.output[0], dict(zip(failed["id"], failed["raw"])))
    if transient:
        print(f"{sm.wildcards.annotator}: {transient} rows failed transiently; the next "
              "`snakemake` reruns this job and sends exactly those requests")
