"""One AL run from files to files: what the al_run rule executes."""
from __future__ import annotations

import time
from typing import Any

import pandas as pd

from llmal.al import simulate
from llmal.config import spec_hash
from llmal.encoders import load_features
from llmal.models import build_classifier
from llmal.tables import check_annotations, write_json, write_parquet, write_text
from llmal.workflow import versions


def run_al(*, spec: dict[str, Any], dataset: str, seed: int, inputs: dict[str, str],
           outputs: dict[str, str], threads: int | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    if threads and spec["recipe_spec"]["kind"] == "finetune":
        import torch
        torch.set_num_threads(threads)   # parallel jobs must not all grab every core
    items = pd.read_parquet(inputs["item_table"])
    split = pd.read_parquet(inputs["split_table"])
    annotations = pd.read_parquet(inputs["annotations"])
    check_annotations(annotations, where=inputs["annotations"])
    features = load_features(inputs["embeddings"]) if inputs.get("embeddings") else None
    labels = spec["labels"]
    classifier = build_classifier(
        spec["recipe_spec"], spec["encoder_spec"], texts=dict(zip(items["id"], items["text"])),
        features=features, n_classes=len(labels["names"]), seed=seed)
    loaded = time.perf_counter()
    result = simulate(items=items, split=split, annotations=annotations, classifier=classifier,
                      sampler=spec["sampler"], settings=spec["al"], label_names=labels["names"],
                      positive=labels["positive"], seed=seed, training=spec.get("training"))
    write_text(outputs["rounds"], result.rounds.to_csv(index=False))
    write_parquet(result.queried, outputs["queried"])
    write_parquet(result.predictions, outputs["predictions"])
    info = classifier.info()
    run = {
        "condition": spec["condition"], "encoder": spec["encoder"], "seed": seed,
        "dataset": dataset, "annotator": spec["annotator"], "sampler": spec["sampler"],
        "recipe": spec["recipe"], "config_hash": spec_hash(spec), "spec": spec,
        "label_names": labels["names"], "positive": labels["positive"],
        "device": info.get("device", "cpu"), "training": info, "data": result.info,
        "final": result.rounds.iloc[-1].to_dict(), "versions": versions(),
        "timings": {"load_seconds": round(loaded - start, 3),
                    "simulate_seconds": round(time.perf_counter() - loaded, 3)},
    }
    write_json(run, outputs["run"])
    return run
