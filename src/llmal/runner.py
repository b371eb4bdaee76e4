"""One AL run from files to files: what the al_run rule executes."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from llmal.config.spec import RunSpec, thaw
from llmal.contracts import check_annotations, write_json, write_parquet, write_text
from llmal.engine.loop import simulate
from llmal.engine.oracle import GoldSource, oracles_in
from llmal.engine.oracles import build_oracle
from llmal.engine.schedule import Schedule
from llmal.llm.fetch import settle_after_report
from llmal.models.encoders import load_features
from llmal.tasks.registry import task_named
from llmal.workflow import versions


def _by_stem(paths: Sequence[str] | str | None) -> dict[str, str]:
    """Input files named after what they hold (annotations/{annotator}.parquet, embeddings/{encoder}.npz)."""
    if not paths:
        return {}
    return {Path(p).stem: str(p) for p in ([paths] if isinstance(paths, str) else paths)}


def run_al(*, spec: Mapping[str, Any] | RunSpec, dataset: str, seed: int, inputs: dict[str, Any],
           outputs: dict[str, str], threads: int | None = None) -> dict[str, Any]:
    """`spec`: the run's RunSpec, or its JSON (the al_run rule's param)."""
    if not isinstance(spec, RunSpec):
        spec = RunSpec.from_json(spec)
    # an LLM request possibly billed without an answer (also in a killed earlier attempt of this
    # run) stays recorded in the response cache until run.json, which counts it, is written
    with settle_after_report():
        return _run_al(spec=spec, dataset=dataset, seed=seed, inputs=inputs, outputs=outputs,
                       threads=threads)


def _run_al(*, spec: RunSpec, dataset: str, seed: int, inputs: dict[str, Any],
            outputs: dict[str, str], threads: int | None) -> dict[str, Any]:
    start = time.perf_counter()
    if threads and spec.recipe_spec["kind"] == "finetune":
        import torch
        torch.set_num_threads(threads)   # parallel jobs must not all grab every core
    items = pd.read_parquet(inputs["item_table"])
    split = pd.read_parquet(inputs["split_table"])
    tables = {}
    for name, path in _by_stem(inputs.get("tables")).items():
        tables[name] = pd.read_parquet(path)
        check_annotations(tables[name], where=path)
    features = load_features(inputs["embeddings"]) if inputs.get("embeddings") else None
    demo_features = {e: load_features(p) for e, p in _by_stem(inputs.get("demo_embeddings")).items()}
    # the engine, the oracles and the learners get plain copies: they serialise parts of them
    # (LLM request bodies, hashes), and a frozen mapping is no dict to json
    labels = thaw(spec.labels)
    kind = task_named(spec.task)
    task = kind.run_task(items, split, labels)
    llm = {"labels": labels, **(spec.llm.to_json() if spec.llm else {})}
    state_dir = (Path(llm.get("cache_dir") or ".llmal-cache") / "batches" / "runs" / dataset
                 / spec.condition / spec.encoder / f"seed{seed}")
    oracle = build_oracle(spec.annotator, annotators=thaw(spec.annotators), mode=spec.annotation,
                          items=items, split=split, tables=tables, llm=llm, embeddings=demo_features,
                          state_dir=state_dir, task=kind)
    gold = GoldSource(task.gold(task.ids["pool"] + task.ids["dev"]), float(spec.gold_cost_per_label or 0.0))
    classifier = kind.build_learner(
        thaw(spec.recipe_spec), thaw(spec.encoder_spec), texts=dict(zip(items["id"], items["text"])),
        features=features, n_classes=len(labels["names"]), seed=seed, run_task=task)
    loaded = time.perf_counter()
    al = thaw(spec.al)
    result = simulate(task=task, oracle=oracle, gold=gold, classifier=classifier,
                      sampler=spec.sampler, seed=seed, training=thaw(spec.training),
                      buy_dev=bool(al.get("dev_labels", True)), stop=al.get("stop"),
                      schedule=Schedule.from_settings(al, full=spec.sampler == "full"))
    write_text(outputs["rounds"], result.rounds.to_csv(index=False))
    write_parquet(result.queried, outputs["queried"])
    write_parquet(result.predictions, outputs["predictions"])
    write_parquet(result.ledger, outputs["ledger"])
    info = classifier.info()
    run = {
        "condition": spec.condition, "encoder": spec.encoder, "seed": seed,
        "dataset": dataset, "annotator": spec.annotator, "annotation": spec.annotation,
        "sampler": spec.sampler, "recipe": spec.recipe, "config_hash": spec.hash(),
        "spec": spec.to_json(), "label_names": task.label_names, "positive": labels.get("positive"),
        "device": info.get("device", "cpu"), "training": info, "data": result.info,
        "stop_reason": result.info["stop_reason"], "stop_message": result.info["stop_message"],
        **({"stopping": result.info["stopping"]} if "stopping" in result.info else {}),
        "costs": {k: result.info[k] for k in ("cost_al", "cost_dev", "cost_gold", "cost_total")},
        # LLM requests this run sent (now or in a killed earlier attempt) that the server may have
        # billed without an answer: timed out, unreadable 200s, in flight at a kill
        "llm_maybe_billed": int(sum(getattr(o, "backend_stats", {}).get("maybe_billed", 0)
                                    for o in oracles_in(oracle))),
        "final": result.rounds.iloc[-1].to_dict(), "versions": versions(),
        "host": platform.node(), **({"slurm_job_id": os.environ["SLURM_JOB_ID"]}
                                    if os.environ.get("SLURM_JOB_ID") else {}),
        "timings": {"load_seconds": round(loaded - start, 3),
                    "simulate_seconds": round(time.perf_counter() - loaded, 3)},
    }
    write_json(run, outputs["run"])
    return run
