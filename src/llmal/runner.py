"""One AL run from files to files: what the al_run rule executes."""
from __future__ import annotations

import json
import os
import platform
import time
from collections import abc
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from llmal.config.spec import RunSpec, thaw
from llmal.contracts import check_annotations, write_json, write_parquet, write_text
from llmal.engine.loop import simulate
from llmal.engine.oracle import GoldSource, oracles_in
from llmal.engine.oracles import build_oracle
from llmal.engine.schedule import Schedule
from llmal.llm.fetch import settle_after_report
from llmal.models.encoders import Features, load_features
from llmal.tasks.registry import task_named
from llmal.workflow import versions


def _by_stem(paths: Sequence[str] | str | None) -> dict[str, str]:
    """Input files named after what they hold (annotations/{annotator}.parquet, embeddings/{encoder}.npz)."""
    if not paths:
        return {}
    return {Path(p).stem: str(p) for p in ([paths] if isinstance(paths, str) else paths)}


class RunInputs:
    """What AL runs read before simulating: the item table, split, annotation tables, features,
    and what the task derives from them (its run view of the items, the texts by id).

    Each file is read once while it is unchanged (its path, size and modification time are the
    key), each derived value once per combination. A plain run makes one and drops it; the warm
    worker (llmal.warm) keeps one for a whole Snakemake session and forks each run from it, so a
    run never changes what the next one sees."""

    def __init__(self) -> None:
        self._values: dict[tuple[Any, ...], Any] = {}
        self.seconds = 0.0   # time spent reading and deriving
        self.worker_read_seconds: float | None = None   # set by the warm worker for a forked run

    def _get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        if key not in self._values:
            start = time.perf_counter()
            self._values[key] = make()
            self.seconds += time.perf_counter() - start
        return self._values[key]

    @staticmethod
    def _file_key(path: str) -> tuple[str, int, int]:
        st = os.stat(path)
        return os.path.realpath(path), st.st_size, st.st_mtime_ns

    def table(self, path: str) -> pd.DataFrame:
        return self._get(("table", self._file_key(path)), lambda: pd.read_parquet(path))

    def annotations(self, path: str) -> pd.DataFrame:
        def read() -> pd.DataFrame:
            table = pd.read_parquet(path)
            check_annotations(table, where=path)
            return table
        return self._get(("annotations", self._file_key(path)), read)

    def features(self, path: str) -> Features:
        return self._get(("features", self._file_key(path)), lambda: load_features(path))

    def run_task(self, kind: Any, task_name: str, labels: dict[str, Any], item_path: str,
                 split_path: str) -> Any:
        key = ("run_task", task_name, json.dumps(labels, sort_keys=True), self._file_key(item_path),
               self._file_key(split_path))
        return self._get(key, lambda: kind.run_task(self.table(item_path), self.table(split_path), labels))

    def texts(self, item_path: str) -> Mapping[str, str]:
        """The texts by id, made on first use: only a learner that reads texts (fine-tuning, never
        forked by the warm worker) makes the dict; a linear head reads its features instead."""
        def read() -> dict[str, str]:
            items = self.table(item_path)
            return dict(zip(items["id"], items["text"]))
        key = ("texts", self._file_key(item_path))
        return self._get(("lazy",) + key, lambda: _LazyMapping(lambda: self._get(key, read)))

    def preload(self, spec: Mapping[str, Any] | RunSpec, inputs: Mapping[str, Any]) -> None:
        """Everything a run of `spec` on `inputs` reads (the warm worker, before it forks)."""
        if not isinstance(spec, RunSpec):
            spec = RunSpec.from_json(spec)
        labels = thaw(spec.labels)
        self.run_task(task_named(spec.task), spec.task, labels, inputs["item_table"], inputs["split_table"])
        for path in _by_stem(inputs.get("tables")).values():
            self.annotations(path)
        for path in [inputs.get("embeddings"), *_by_stem(inputs.get("demo_embeddings")).values()]:
            if path:
                self.features(path)


class _LazyMapping(abc.Mapping):
    """A read-only mapping that `make`s its dict the first time it is read."""

    def __init__(self, make: Callable[[], Mapping[str, str]]) -> None:
        self._make = make
        self._data: Mapping[str, str] | None = None

    def _dict(self) -> Mapping[str, str]:
        if self._data is None:
            self._data = self._make()
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._dict()[key]

    def __iter__(self):
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())


def run_al(*, spec: Mapping[str, Any] | RunSpec, dataset: str, seed: int, inputs: dict[str, Any],
           outputs: dict[str, str], threads: int | None = None,
           loaded: RunInputs | None = None) -> dict[str, Any]:
    """`spec`: the run's RunSpec, or its JSON (the al_run rule's param). `loaded`: inputs kept in
    memory by the warm worker (None: read them now)."""
    if not isinstance(spec, RunSpec):
        spec = RunSpec.from_json(spec)
    # an LLM request possibly billed without an answer (also in a killed earlier attempt of this
    # run) stays recorded in the response cache until run.json, which counts it, is written
    with settle_after_report():
        return _run_al(spec=spec, dataset=dataset, seed=seed, inputs=inputs, outputs=outputs,
                       threads=threads, loaded=RunInputs() if loaded is None else loaded)


def _run_al(*, spec: RunSpec, dataset: str, seed: int, inputs: dict[str, Any],
            outputs: dict[str, str], threads: int | None, loaded: RunInputs) -> dict[str, Any]:
    start = time.perf_counter()
    if threads and spec.recipe_spec["kind"] == "finetune":
        import torch
        torch.set_num_threads(threads)   # parallel jobs must not all grab every core
    items = loaded.table(inputs["item_table"])
    split = loaded.table(inputs["split_table"])
    tables = {name: loaded.annotations(path) for name, path in _by_stem(inputs.get("tables")).items()}
    features = loaded.features(inputs["embeddings"]) if inputs.get("embeddings") else None
    demo_features = {e: loaded.features(p) for e, p in _by_stem(inputs.get("demo_embeddings")).items()}
    # the engine, the oracles and the learners get plain copies: they serialise parts of them
    # (LLM request bodies, hashes), and a frozen mapping is no dict to json
    labels = thaw(spec.labels)
    kind = task_named(spec.task)
    task = loaded.run_task(kind, spec.task, labels, inputs["item_table"], inputs["split_table"])
    llm = {"labels": labels, **(spec.llm.to_json() if spec.llm else {})}
    state_dir = (Path(llm.get("cache_dir") or ".llmal-cache") / "batches" / "runs" / dataset
                 / spec.condition / spec.encoder / f"seed{seed}")
    oracle = build_oracle(spec.annotator, annotators=thaw(spec.annotators), mode=spec.annotation,
                          items=items, split=split, tables=tables, llm=llm, embeddings=demo_features,
                          state_dir=state_dir, task=kind)
    gold = GoldSource(task.gold(task.ids["pool"] + task.ids["dev"]), float(spec.gold_cost_per_label or 0.0))
    classifier = kind.build_learner(
        thaw(spec.recipe_spec), thaw(spec.encoder_spec), texts=loaded.texts(inputs["item_table"]),
        features=features, n_classes=len(labels["names"]), seed=seed, run_task=task)
    loaded_at = time.perf_counter()
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
        "timings": {"load_seconds": round(loaded_at - start, 3),
                    "simulate_seconds": round(time.perf_counter() - loaded_at, 3),
                    # a run forked from the warm worker: the worker's reading of the inputs this
                    # run was the first to need (0 when they were in memory already)
                    **({"worker_read_seconds": round(loaded.worker_read_seconds, 3)}
                       if loaded.worker_read_seconds is not None else {})},
    }
    write_json(run, outputs["run"])
    return run
