"""The AL engine's view of a text-classification run: items, one class index per item, one label
per item bought, and test predictions scored against human gold (F1, FP/FN, soft-label metrics)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from llmal.contracts import annotator_columns
from llmal.strategies.catalog import make_strategy
from llmal.strategies.model_context import ModelContext
from llmal.tasks.base import TaskError
from llmal.tasks.classification.metrics import classification_metrics, soft_label_metrics, vote_counts


class ClassificationTask:
    kind = "classification"

    def __init__(self, items: pd.DataFrame, split: pd.DataFrame, label_names: Sequence[str],
                 positive: str | None) -> None:
        self.label_names = list(label_names)
        self.n_classes = len(self.label_names)
        self.positive = None if positive is None else self.label_names.index(positive)
        self.items = items.assign(id=items["id"].astype(str)).set_index("id", drop=False)
        split_of = split.assign(id=split["id"].astype(str)).set_index("id")["split"]
        self.ids = {name: [str(i) for i in split_of.index[split_of == name]] for name in ("pool", "dev", "test")}
        if not self.ids["test"]:
            raise TaskError("the split has no test items: nothing to evaluate on")
        test = self.items.loc[self.ids["test"]]
        self._gold_test = test["gold"].to_numpy(dtype=np.int64)
        cols = annotator_columns(test)
        self._votes = (vote_counts(test[cols].to_numpy(dtype="float64", na_value=np.nan), self.n_classes)
                       if cols else np.zeros((len(test), self.n_classes)))

    # --- items and labels ---------------------------------------------------------------
    def gold(self, ids: Sequence[str]) -> dict[str, int]:
        """Human gold of the given (never test) items, for gold sets bought through the ledger."""
        test = set(self.ids["test"])
        leaked = [i for i in ids if i in test]
        if leaked:
            raise TaskError(f"test item {leaked[0]!r} asked for as gold outside evaluation")
        return dict(zip(map(str, ids), self.items.loc[list(ids), "gold"].astype(int)))

    @staticmethod
    def gold_targets(ids: Sequence[str], gold: dict[str, int]) -> np.ndarray:
        """Training targets of bought gold labels (a meta set): the class indices."""
        return np.array([gold[str(i)] for i in ids], dtype=np.int64)

    @staticmethod
    def usable(table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
        """The items of an annotation table that can be trained on (status ok) and their labels."""
        ok = table[table["status"] == "ok"]
        return ok["id"].astype(str).tolist(), ok["label"].to_numpy(dtype=np.int64)

    @staticmethod
    def n_usable_classes(labels: np.ndarray) -> int:
        return int(np.unique(labels).size)

    def uniform(self, n: int) -> np.ndarray:
        """What a run predicts before any classifier exists: every class equally likely."""
        return np.full((n, self.n_classes), 1.0 / self.n_classes)

    # --- evaluation against human gold ---------------------------------------------------
    def evaluate(self, probs_test: np.ndarray) -> dict[str, Any]:
        metrics = classification_metrics(self._gold_test, probs_test, self.label_names, self.positive)
        metrics.update(soft_label_metrics(self._votes, probs_test))
        return metrics

    def f1_macro(self, labels: np.ndarray, probs: np.ndarray) -> float:
        return float(f1_score(labels, probs.argmax(axis=1), labels=list(range(self.n_classes)),
                              average="macro", zero_division=0))

    def predictions(self, probs_test: np.ndarray) -> pd.DataFrame:
        test = self.items.loc[self.ids["test"]]
        # prob: of the positive class; without one, of the predicted class
        prob = probs_test.max(axis=1) if self.positive is None else probs_test[:, self.positive]
        return pd.DataFrame({
            "id": self.ids["test"], "prob": prob, "pred": probs_test.argmax(axis=1),
            "gold": self._gold_test,
            "topic": test["topic"].astype(str).to_numpy() if "topic" in test else "",
        })

    # --- the AL loop's hooks ------------------------------------------------------------------
    @staticmethod
    def make_strategy(name: str) -> Any:
        return make_strategy(name)

    @staticmethod
    def query_context(classifier: Any, candidates: Sequence[str], labelled: Sequence[str], *,
                      rng: np.random.Generator, seed: int) -> Any:
        return ModelContext(classifier, candidates, labelled, rng=rng, seed=seed)

