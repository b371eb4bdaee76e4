"""The AL engine's view of a multi-label run: an item's label is a set (llmal.tasks.multilabel.
labels), `usable` yields (n, n_labels) 0/1 rows, a learner's output is per-label probabilities
(LabelProbs, with its decision thresholds), and test predictions are scored per label and per
item against human gold (llmal.tasks.multilabel.metrics)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import annotator_columns
from llmal.strategies.model_context import ModelContext
from llmal.tasks.base import TaskError
from llmal.tasks.multilabel.labels import to_indicator
from llmal.tasks.multilabel.learner import decisions
from llmal.tasks.multilabel.metrics import NONE, multilabel_metrics, prediction_rows, soft_label_metrics
from llmal.tasks.multilabel.strategies import make_multilabel_strategy


class MultiLabelTask:
    kind = "multilabel"

    def __init__(self, items: pd.DataFrame, split: pd.DataFrame, label_names: Sequence[str]) -> None:
        self.names = [str(n) for n in label_names]
        self.label_names = self.names + [NONE]    # of the per-(item, label) prediction rows
        self.n_labels = len(self.names)
        self.positive = None
        self.items = items.assign(id=items["id"].astype(str)).set_index("id", drop=False)
        split_of = split.assign(id=split["id"].astype(str)).set_index("id")["split"]
        self.ids = {name: [str(i) for i in split_of.index[split_of == name]] for name in ("pool", "dev", "test")}
        if not self.ids["test"]:
            raise TaskError("the split has no test items: nothing to evaluate on")
        test = self.items.loc[self.ids["test"]]
        self._gold_test = to_indicator(test["gold"].to_numpy(dtype=np.int64), self.n_labels)
        cols = annotator_columns(test)
        coded = test[cols].notna().to_numpy() if cols else np.zeros((len(test), 0), dtype=bool)
        votes = np.zeros((len(test), self.n_labels))
        for j, col in enumerate(cols):
            given = coded[:, j]
            votes[given] += to_indicator(test[col][given].astype("int64").to_numpy(), self.n_labels)
        n_coders = coded.sum(axis=1)
        self._coded = n_coders > 0
        self._share = votes / np.maximum(n_coders, 1)[:, None]

    # --- items and labels ---------------------------------------------------------------
    def gold(self, ids: Sequence[str]) -> dict[str, int]:
        test = set(self.ids["test"])
        leaked = [i for i in ids if i in test]
        if leaked:
            raise TaskError(f"test item {leaked[0]!r} asked for as gold outside evaluation")
        return dict(zip(map(str, ids), self.items.loc[list(ids), "gold"].astype(int)))

    def gold_targets(self, ids: Sequence[str], gold: dict[str, int]) -> np.ndarray:
        return to_indicator([gold[str(i)] for i in ids], self.n_labels)

    def usable(self, table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
        """The items answered (status ok) and their (n, n_labels) 0/1 label rows."""
        ok = table[table["status"] == "ok"]
        return ok["id"].astype(str).tolist(), to_indicator(ok["label"].to_numpy(dtype=np.int64), self.n_labels)

    @staticmethod
    def n_usable_classes(labels: np.ndarray) -> int:
        """2 once some label is present and some absent among the training rows."""
        return int(np.unique(np.asarray(labels)).size)

    def uniform(self, n: int) -> np.ndarray:
        """Before any learner: every label at 0.5, none predicted (decisions need p > 0.5)."""
        return np.full((n, self.n_labels), 0.5)

    # --- evaluation against human gold ---------------------------------------------------
    def evaluate(self, probs_test: np.ndarray) -> dict[str, Any]:
        metrics = multilabel_metrics(self._gold_test, decisions(probs_test), self.names)
        metrics.update(soft_label_metrics(self._share, self._coded, probs_test))
        # the prediction rows' "label absent" class has no score of its own
        metrics.update({f"{m}_{NONE}": float("nan") for m in ("precision", "recall", "f1")})
        return metrics

    def f1_macro(self, labels: np.ndarray, probs: np.ndarray) -> float:
        return float(multilabel_metrics(np.asarray(labels), decisions(probs), self.names)["f1_macro"])

    def predictions(self, probs_test: np.ndarray) -> pd.DataFrame:
        test = self.items.loc[self.ids["test"]]
        return prediction_rows(self.ids["test"], test["topic"].astype(str).tolist(), self._gold_test,
                               decisions(probs_test), probs_test, self.names)

    # --- the AL loop's hooks ------------------------------------------------------------------
    @staticmethod
    def make_strategy(name: str) -> Any:
        return make_multilabel_strategy(name)

    @staticmethod
    def query_context(classifier: Any, candidates: Sequence[str], labelled: Sequence[str], *,
                      rng: np.random.Generator, seed: int) -> Any:
        return ModelContext(classifier, candidates, labelled, rng=rng, seed=seed)
