"""The sequence-labelling task behind the AL engine's task seam (llmal.tasks.base).

Items are sentences. An annotator's answer is the `spans` cell of its annotation row (label 0 =
answered, llmal.contracts); `usable` turns the ok rows into BIO tag sequences for training. A
classifier's output for a batch of sentences is a SequenceOutput (per-token marginals, the best
sequence and its probability), which the sequence strategies (llmal.tasks.ner.strategies) score and
`evaluate` scores against the gold test tags with seqeval (llmal.tasks.ner.metrics).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from llmal.tasks.base import TaskError
from llmal.tasks.ner.data import sentence_tags, sentence_tokens
from llmal.tasks.ner.metrics import NONE, entity_rows, seqeval_scores
from llmal.tasks.ner.spans import spans_of_json, spans_to_tags, tag_names
from llmal.tasks.ner.strategies import SequenceContext, make_sequence_strategy


@dataclass
class SequenceOutput:
    """A tagger's output for n sentences: marginals[i] is (len_i, n_tags) over tag_names,
    best[i] the most probable tag sequence, best_logprob[i] its log-probability."""
    marginals: list[np.ndarray]
    best: list[list[str]]
    best_logprob: np.ndarray

    def __len__(self) -> int:
        return len(self.best)


class NERTask:
    kind = "ner"

    def __init__(self, items: pd.DataFrame, split: pd.DataFrame, types: Sequence[str]) -> None:
        self.types = list(types)
        self.label_names = self.types + [NONE]    # of the entity rows in predictions.parquet
        self.tag_names = tag_names(self.types)
        self.positive = None
        self.tokens = sentence_tokens(items)
        self._gold_tags = sentence_tags(items)
        split_of = split.assign(id=split["id"].astype(str)).set_index("id")["split"]
        self.ids = {name: [str(i) for i in split_of.index[split_of == name]] for name in ("pool", "dev", "test")}
        if not self.ids["test"]:
            raise TaskError("the split has no test sentences: nothing to evaluate on")

    # --- items and labels ---------------------------------------------------------------
    def gold(self, ids: Sequence[str]) -> dict[str, int]:
        """Gold sets bought through the ledger (demonstration pools): one label per sentence
        (0 = annotated); the tags themselves are read by whoever shows them (gold_tags)."""
        test = set(self.ids["test"])
        leaked = [i for i in ids if i in test]
        if leaked:
            raise TaskError(f"test item {leaked[0]!r} asked for as gold outside evaluation")
        return {str(i): 0 for i in ids}

    def gold_tags(self, ids: Sequence[str]) -> list[list[str]]:
        return [list(self._gold_tags[str(i)]) for i in ids]

    def gold_targets(self, ids: Sequence[str], gold: dict[str, int]) -> np.ndarray:
        """Training targets of bought gold sentences (a meta set): their gold tag sequences."""
        missing = [i for i in ids if str(i) not in gold]
        if missing:
            raise TaskError(f"sentence {missing[0]!r} was not bought as gold")
        out = np.empty(len(ids), dtype=object)
        for n, tags in enumerate(self.gold_tags(ids)):
            out[n] = tags
        return out

    def size(self, ids: Sequence[str]) -> np.ndarray:
        """Tokens per sentence (the cost unit of token budgets)."""
        return np.array([len(self.tokens[str(i)]) for i in ids], dtype=np.int64)

    def usable(self, table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
        """The sentences answered (status ok) and their tag sequences (object array of lists)."""
        ok = table[table["status"] == "ok"]
        ids = ok["id"].astype(str).tolist()
        tags = np.empty(len(ids), dtype=object)
        for n, (item, spans) in enumerate(zip(ids, ok["spans"].astype(str))):
            tags[n] = spans_to_tags(spans_of_json(spans), len(self.tokens[item]))
        return ids, tags

    @staticmethod
    def n_usable_classes(labels: np.ndarray) -> int:
        """Distinct tags among the training sentences: 2 or more = at least one entity."""
        return len({t for seq in labels for t in seq})

    def uniform(self, n: int) -> SequenceOutput:
        """Before any tagger exists (n = the test sentences): every tag equally likely, "O"
        everywhere predicted."""
        lengths = [len(self.tokens[i]) for i in self.ids["test"]][:n]
        k = len(self.tag_names)
        return SequenceOutput([np.full((m, k), 1.0 / k) for m in lengths], [["O"] * m for m in lengths],
                              np.array([-m * np.log(k) for m in lengths], dtype=float))

    # --- evaluation against human gold ---------------------------------------------------
    def evaluate(self, out: SequenceOutput) -> dict[str, Any]:
        return self.score(self.ids["test"], out)

    def score(self, ids: Sequence[str], out: SequenceOutput, gold: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
        gold = self.gold_tags(ids) if gold is None else gold
        metrics: dict[str, Any] = seqeval_scores(gold, out.best, self.types)
        for name in (NONE,):   # the entity rows' "no entity" class has no score of its own
            metrics.update({f"precision_{name}": float("nan"), f"recall_{name}": float("nan"),
                            f"f1_{name}": float("nan")})
        metrics.update(soft_ce=float("nan"), soft_brier=float("nan"))
        return metrics

    def f1_macro(self, labels: np.ndarray, out: SequenceOutput) -> float:
        """Entity F1 (macro over types) of `out` against labels (tag sequences), e.g. the
        annotator's dev labels."""
        return float(seqeval_scores(list(labels), out.best, self.types)["f1_macro"])

    def predictions(self, out: SequenceOutput) -> pd.DataFrame:
        return entity_rows(self.ids["test"], self.gold_tags(self.ids["test"]), out.best, self.types)

    # --- the AL loop's hooks ------------------------------------------------------------------
    def make_strategy(self, name: str) -> Any:
        return make_sequence_strategy(name)

    def query_context(self, classifier: Any, candidates: Sequence[str], labelled: Sequence[str], *,
                      rng: np.random.Generator, seed: int) -> Any:
        return SequenceContext(classifier, candidates, labelled, rng=rng, seed=seed)

