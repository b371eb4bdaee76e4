"""A fine-tuned encoder with a sigmoid head for label sets (task: multilabel, recipe kind
finetune): the fine-tuning loop of llmal.models.finetune with one logit per label, the per-label
binary cross-entropy with logits as its loss and a sigmoid per label as its probabilities.

Early stopping keeps the epoch with the best micro F1 on the dev labels at the default threshold;
after training, `tune_thresholds: true` picks each label's threshold on those dev labels only
(llmal.tasks.multilabel.learner.tune_threshold), else every label uses `threshold` (default 0.5).
predict_proba returns LabelProbs carrying the thresholds, as the one-vs-rest head does.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.metrics import f1_score

from llmal.models.finetune import FineTuneClassifier
from llmal.models.losses import indicator_losses
from llmal.models.training import predict_probabilities, sigmoid_probabilities
from llmal.tasks.multilabel.learner import LabelProbs, decisions, tune_threshold

# the keys of a finetune recipe that only the task reads (FineTuneRecipe does not know them)
THRESHOLD_KEYS = ("threshold", "tune_thresholds")


class FineTuneMultiLabel(FineTuneClassifier):
    example_losses = staticmethod(indicator_losses)  # type: ignore[assignment]
    activation = staticmethod(sigmoid_probabilities)

    def __init__(self, texts: Mapping[str, str], *, encoder: Mapping[str, Any],
                 recipe: Mapping[str, Any], n_labels: int, seed: int,
                 device: str | None = None) -> None:
        if (recipe.get("class_weight") or "none") != "none":
            raise ValueError("recipe config: class_weight weighs the classes of one label; a "
                             "multi-label head (task multilabel) trains without it")
        self.default_threshold = float(recipe.get("threshold", 0.5))
        self.tune = bool(recipe.get("tune_thresholds", False))
        super().__init__(texts, encoder=encoder,
                         recipe={k: v for k, v in recipe.items() if k not in THRESHOLD_KEYS},
                         n_classes=n_labels, seed=seed, device=device)
        self.n_labels = n_labels
        self.thresholds = np.full(n_labels, self.default_threshold)

    def fit(self, ids: Sequence[str], labels: np.ndarray, *,  # type: ignore[override]
            sample_weight: np.ndarray | None = None,
            dev: tuple[Sequence[str], np.ndarray] | None = None,
            meta: Any = None, negatives: Any = None) -> "FineTuneMultiLabel":
        if meta is not None or negatives is not None:
            raise ValueError("task multilabel: the fine-tuned head trains on label sets only "
                             "(no reweighting meta set, no negative learning)")
        super().fit(ids, labels, sample_weight=sample_weight, dev=dev)
        if self._last.get("dev_metric"):
            self._last["dev_metric"] = "f1_micro"   # early stopping's score (_dev_scorer)
        self.thresholds = np.full(self.n_labels, self.default_threshold)
        if self.tune and dev is not None and len(dev[0]):
            p = np.asarray(super().predict_proba(list(dev[0])))
            y = self._check_labels(dev[1], len(dev[0]), "dev labels").astype(np.int64)
            self.thresholds = np.array([tune_threshold(y[:, k], p[:, k], self.default_threshold)
                                        for k in range(self.n_labels)])
        self._last["thresholds"] = [round(float(t), 2) for t in self.thresholds]
        return self

    def predict_proba(self, ids: Sequence[str]) -> LabelProbs:
        return LabelProbs(super().predict_proba(ids), self.thresholds)

    def perturbed_proba(self, ids: Sequence[str], passes: int, scale: float, seed: int) -> np.ndarray:
        raise ValueError("task multilabel: noise stability perturbs a softmax head; the "
                         "multi-label head's outputs are independent sigmoids")

    def info(self) -> dict[str, Any]:
        return {**super().info(), "task": "multilabel", "head": "sigmoid"}

    def _check_labels(self, labels: Any, n: int, what: str) -> np.ndarray:
        """(n, n_labels) 0/1 label rows as float targets of the sigmoid outputs."""
        y = np.asarray(labels)
        if y.size != n * self.n_classes:
            raise ValueError(f"{what}: expected {n} rows of {self.n_classes} 0/1 labels, got shape {y.shape}")
        y = y.reshape(n, self.n_classes)
        if n and not np.isin(y, (0, 1)).all():
            raise ValueError(f"{what}: label rows must be 0/1")
        return y.astype(np.float32)

    def _dev_scorer(self, dev_ids: Sequence[str], dev_labels: np.ndarray):
        y = self._check_labels(dev_labels, len(dev_ids), "dev labels").astype(np.int64)
        sequences = self.tokens.get(list(dev_ids))

        def micro_f1() -> float:
            p = predict_probabilities(self._forward, self.plan, sequences,
                                      batch_size=self.encoder.eval_batch_size,
                                      n_classes=self.n_classes, amp_dtype=self.amp_dtype,
                                      activation=self.activation)
            return float(f1_score(y, decisions(p, np.full(self.n_labels, self.default_threshold)),
                                  average="micro", zero_division=0))
        return micro_f1
