"""The AL loop of one condition x encoder x seed, from four parts (llmal.engine):

- the oracle sells labels (`acquire(ids)`), lazily or from a table;
- the ledger records every label bought and what it cost (initial, al, dev, meta,
  demonstrations), so rounds.csv and run.json report costs from one place;
- the schedule says how many labels each round asks for and stops at the budgets;
- the strategy picks the next items from the unlabelled pool;
- the stop monitor (llmal.stopping, `al.stop`) checks the stopping criteria after every round.
The task (llmal.tasks.base.RunTask) holds the items and scores test predictions against human gold.
The test split is never queried and never used for training or early stopping.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.engine.ledger import Ledger
from llmal.engine.noise_robust import (
    NO_PREDICTION,
    TrainingOptions,
    discrepancy_weights,
    negative_mask,
    soft_targets,
)
from llmal.engine.oracle import Bought, GoldSource, Oracle
from llmal.engine.schedule import (
    BUDGET_TOKENS,
    BUDGET_USD,
    COMPLETED,
    NO_TWO_CLASSES,
    POOL_EXHAUSTED,
    STOP_CRITERION,
    Schedule,
    stop_message,
)
from llmal.models.base import Classifier
from llmal.stopping.monitor import StopMonitor, value_column
from llmal.tasks.base import RunTask
from llmal.tasks.draws import draw_meta_ids

# what a classifier's info() may report about one round's training, copied into rounds.csv
ROUND_TRAINING_KEYS = ("epochs_run", "best_dev_f1", "stopped_early", "train_seconds")
QUERIED_COLUMNS = ["id", "round", "purpose", "label", "status", "cost_usd"]


@dataclass
class ALResult:
    rounds: pd.DataFrame
    queried: pd.DataFrame
    predictions: pd.DataFrame
    ledger: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


class _Run:
    """The state of one simulation: what was bought, the current model, the rows written."""

    def __init__(self, task: RunTask, oracle: Oracle, gold: GoldSource,
                 classifier: Classifier, schedule: Schedule, options: TrainingOptions,
                 log: Callable[[str], None]) -> None:
        self.task, self.oracle, self.gold, self.classifier = task, oracle, gold, classifier
        self.schedule, self.options, self.log = schedule, options, log
        self.ledger = Ledger()
        self.pool: list[str] = []                # the pool items this oracle can label
        self.train_ids: list[str] = []           # bought for training, in query order
        self.dev_ids: list[str] = []
        self.meta: tuple[list[str], np.ndarray] | None = None
        self.queried: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.predicted_at_query: dict[str, int] = {}
        self.fitted = False
        self.n_usable = 0
        self.n_aggregator_gold = 0
        self.probs_test = task.uniform(len(task.ids["test"]))
        self.token_cut = ""                      # the sentence budget_tokens left out, for the log
        self.monitor: StopMonitor | None = None

    # --- buying ----------------------------------------------------------------------------
    def buy(self, ids: Sequence[str], rnd: int, purpose: str, dev: Sequence[str] = ()) -> pd.DataFrame:
        """Buy `ids` for `purpose` (initial or al), and `dev` labels with them in the same
        oracle call (one Batch API batch)."""
        dev = [str(i) for i in dev]
        got = self.oracle.acquire(dev + [str(i) for i in ids])
        self.record(got, rnd, ["dev"] * len(dev) + [purpose] * len(ids))
        self.dev_ids += dev
        train = got.table.iloc[len(dev):]
        self.train_ids += [str(i) for i in ids]
        self.queried += [{"id": r.id, "round": rnd, "purpose": purpose, "label": r.label,
                          "status": r.status, "cost_usd": float(c)}
                         for r, c in zip(train.itertuples(), got.charged[len(dev):])]
        return train

    def record(self, got: Bought, rnd: int, purposes: Sequence[str]) -> None:
        """Write one oracle purchase to the ledger, per purpose, each label under the source
        that gave it (a routed annotator's primary and fallback; else the oracle itself)."""
        ids = got.table["id"].astype(str).to_numpy()
        for p in dict.fromkeys(purposes):
            for part in got.sources(self.oracle.name):
                keep = np.array([purposes[i] == p for i in part.positions], dtype=bool)
                if keep.any():
                    self.ledger.record(ids[part.positions[keep]], round=rnd, purpose=p, source=part.source,
                                       status=part.status[keep], cost_usd=part.charged[keep])

    def buy_gold(self, ids: Sequence[str], rnd: int, purpose: str) -> dict[str, int]:
        got = self.gold.acquire(list(ids))
        self.ledger.record(got.table["id"], round=rnd, purpose=purpose, source="gold",
                           status=got.table["status"], cost_usd=got.charged)
        return dict(zip(got.table["id"].astype(str), got.table["label"].astype(int)))

    def buy_aggregator_gold(self, ids: Sequence[str], asked: Sequence[str]) -> None:
        """A learned aggregation's gold set (dev items, never test): their human gold labels and
        the members' answers on them, both charged in round 0 as purpose meta."""
        self.oracle.receive_gold(self.buy_gold(ids, 0, "meta"))
        self.n_aggregator_gold = len(ids)
        if asked:
            got = self.oracle.acquire(list(asked))
            self.record(got, 0, ["meta"] * len(asked))

    @property
    def spent(self) -> float:
        return self.ledger.total

    def n_tokens(self) -> int | None:
        """Tokens of the training sentences bought (tasks with a size per item: ner)."""
        size = getattr(self.task, "size", None)
        return None if size is None else int(size(self.train_ids).sum())

    def affordable(self, ids: Sequence[str], committed: float = 0.0) -> tuple[list[str], str | None]:
        """The prefix of `ids` the budgets allow, after `committed` dollars not yet spent."""
        tokens = {}
        if self.schedule.budget_tokens is not None:
            tokens = {"sizes": self.task.size(list(ids)), "n_tokens": self.n_tokens() or 0}
        n, cut = self.schedule.affordable(self.oracle.estimate(list(ids)), len(self.train_ids),
                                          self.spent + committed, len(self.pool), **tokens)
        if cut == BUDGET_TOKENS:
            sizes = tokens["sizes"]
            left = int(self.schedule.budget_tokens) - tokens["n_tokens"] - int(sizes[:n].sum())
            self.token_cut = f"the next sentence, {ids[n]!r}, has {int(sizes[n])} tokens, {left} are left"
        return list(ids[:n]), cut

    # --- training and evaluation ----------------------------------------------------------
    def fit_and_score(self, rnd: int, seconds_from: float, stop: str = "") -> None:
        trained: dict[str, Any] = {}
        table = self.oracle.current(self.train_ids) if self.train_ids else None
        ok_ids, ok_labels = self.task.usable(table) if table is not None else ([], np.zeros(0, np.int64))
        self.n_usable = len(ok_ids)
        if self.options.discrepancy_alpha is not None:
            trained["n_downweighted"] = 0
        negatives = None
        if self.options.negative_learning and table is not None:
            negatives = self._negative_items(table, self.options.negative_weight_at(rnd))
            trained["n_negative"] = 0 if negatives is None else len(negatives[0])
        if self.task.n_usable_classes(ok_labels) >= 2:
            extra: dict[str, Any] = {} if self.meta is None else {"meta": self.meta}
            if negatives is not None:
                extra["negatives"] = negatives
            weights = None
            if self.options.discrepancy_alpha is not None:
                weights = discrepancy_weights(
                    ok_labels, np.array([self.predicted_at_query.get(i, NO_PREDICTION) for i in ok_ids]),
                    self.options.discrepancy_alpha)
                trained["n_downweighted"] = int((weights != 1.0).sum())
            fit_ids, fit_labels = ok_ids, ok_labels
            if self.options.soft_labels and table is not None:   # cross-entropy against `probs`
                fit_ids, fit_labels, weights = soft_targets(ok_ids, ok_labels, table,
                                                            self.task.label_names, weights)
                trained["n_soft_rows"] = len(fit_ids)
            self.classifier.fit(fit_ids, fit_labels, sample_weight=weights, dev=self.dev_labels(), **extra)
            self.fitted = True
            self.probs_test = self.classifier.predict_proba(self.task.ids["test"])
            trained.update({k: v for k, v in self.classifier.info().items() if k in ROUND_TRAINING_KEYS})
        metrics = self.task.evaluate(self.probs_test)
        dev = self.dev_labels()
        if dev is not None:   # what a real study can watch: F1 against the annotator's dev labels
            metrics["dev_f1_macro"] = (self.task.f1_macro(dev[1], self.classifier.predict_proba(dev[0]))
                                       if self.fitted else float("nan"))
        tokens = self.n_tokens()
        self.rows.append({"round": rnd, "n_labels": len(self.train_ids),
                          **({} if tokens is None else {"n_tokens": tokens}), "n_train": len(ok_ids),
                          **self.ledger.costs(), **metrics, **trained,
                          "seconds": round(time.perf_counter() - seconds_from, 4), "stop": stop})
        self.log(f"round {rnd}: {len(self.train_ids)} labels ({len(ok_ids)} usable), "
                 f"${self.spent:.4f} in all, F1-macro {metrics['f1_macro']:.4f}")

    def check_stop(self, rnd: int) -> bool:
        """The stopping criteria after round `rnd` (their columns go into its row); True when the
        run must end here (`al.stop.mode: stop` and a criterion fired)."""
        if self.monitor is None:
            return False
        self.rows[-1].update(self.monitor.observe(
            rnd, self.classifier.predict_proba, float(self.rows[-1].get("dev_f1_macro", float("nan")))))
        for name in self.monitor.fired():
            if self.monitor.first_fired[name] == rnd:
                self.log(f"round {rnd}: stopping criterion {name} fired")
        return self.monitor.ends_run()

    def dev_labels(self) -> tuple[list[str], np.ndarray] | None:
        if not self.dev_ids:
            return None
        ids, labels = self.task.usable(self.oracle.current(self.dev_ids))
        return (ids, labels) if ids else None

    def _negative_items(self, table: pd.DataFrame, weight: float) -> tuple[list[str], np.ndarray, float] | None:
        """Bought items with complementary labels under the options' rule (S1's negative
        learning: classes whose mean member probability is at most the threshold, or the
        classes no member chose for items without a label)."""
        ids, masks = [], []
        probs = table["probs"] if "probs" in table.columns else pd.Series("{}", index=table.index)
        for row, cell in zip(table.itertuples(), probs.astype(str)):
            label = int(row.label) if row.status == "ok" else None
            mask = negative_mask(str(row.answers), cell, label, self.task.label_names, self.options,
                                 item=row.id)
            if mask.any():
                ids.append(row.id)
                masks.append(mask)
        return (ids, np.array(masks), weight) if ids else None

    def query(self, strategy: Any, candidates: list[str], k: int, rng: np.random.Generator,
              seed: int) -> list[str]:
        """The strategy's picks among the unlabelled candidates, in priority order."""
        ctx = self.task.query_context(self.classifier, candidates, self.train_ids, rng=rng, seed=seed)
        return [candidates[int(p)] for p in strategy.query(ctx, k)]

    def finish(self, reason: str, rnd: int, detail: str = "") -> str:
        if reason == BUDGET_TOKENS and not detail:
            detail = self.token_cut
        if reason == STOP_CRITERION and self.monitor is not None and not detail:
            detail = "fired: " + ", ".join(
                f"{n} ({self.rows[-1].get(value_column(n), float('nan')):.4g})" for n in self.monitor.fired())
        message = stop_message(reason, rnd=rnd, n_labels=len(self.train_ids), spent=self.spent,
                               schedule=self.schedule, detail=detail, n_tokens=self.n_tokens())
        self.log(message)
        if self.rows:
            self.rows[-1]["stop"] = reason
        return message


def simulate(*, task: RunTask, oracle: Oracle, gold: GoldSource, classifier: Classifier,
             sampler: str, schedule: Schedule, seed: int, training: dict[str, Any] | None = None,
             buy_dev: bool = True, stop: Mapping[str, Any] | None = None,
             log: Callable[[str], None] = print) -> ALResult:
    """Run the rounds of one condition; never raises on a valid config: a run that cannot go on
    (pool or budget exhausted, no two classes) stops and says why in its log, the last row of
    rounds.csv (`stop`) and run.json (`stop_reason`).

    `buy_dev`: buy the dev split's labels from the annotator (early stopping of fine-tuning, and
    the dev F1 per round that a real study would watch); charged whatever their status.
    `stop`: the run's `al.stop` settings (stopping criteria; none for `full`, which has one round)."""
    rng = np.random.default_rng(seed)
    options = TrainingOptions.from_config(training)
    strategy = None if schedule.full else task.make_strategy(sampler)
    run = _Run(task, oracle, gold, classifier, schedule, options, log)
    visible = oracle.visible()
    run.pool = [i for i in task.ids["pool"] if visible is None or i in visible]
    run.monitor = StopMonitor.from_settings(stop, run.pool) if stop and not schedule.full else None
    start = time.perf_counter()

    # round 0, before any training label: the gold sets, and the dev labels (bought from the
    # condition's annotator with the initial set, in one oracle call)
    fixed_gold = list(dict.fromkeys(oracle.demonstration_ids()))
    meta_ids = _meta_ids(task, options, fixed_gold)
    aggregator_gold = list(dict.fromkeys(oracle.gold_ids()))   # a learned mixture's gold set
    aggregator_asked = [i for i in aggregator_gold if visible is None or i in visible]
    dev = [i for i in task.ids["dev"] if visible is None or i in visible] if buy_dev else []
    dev_cost = float(oracle.estimate(dev).sum())
    aggregator_cost = float(oracle.estimate([i for i in aggregator_asked if i not in set(dev)]).sum())
    fixed_cost = (len(set(fixed_gold) | set(meta_ids) | set(aggregator_gold)) * gold.price + dev_cost
                  + aggregator_cost)
    if schedule.budget_usd is not None and fixed_cost > schedule.budget_usd + 1e-12:
        run.fit_and_score(0, start)
        message = run.finish(BUDGET_USD, 0, f"the dev and gold sets alone would cost ${fixed_cost:.4f}")
        return _result(run, BUDGET_USD, message)
    if fixed_gold:
        run.buy_gold(fixed_gold, 0, "demonstrations")
    if meta_ids:   # gold is bought once: a demonstration pool as meta set costs nothing more
        labels = run.buy_gold(meta_ids, 0, "meta")
        run.meta = (meta_ids, task.gold_targets(meta_ids, labels))
    if aggregator_gold:
        run.buy_aggregator_gold(aggregator_gold, aggregator_asked)

    # round 0: a seeded random start (the whole schedule for `full`), extended at random until
    # the usable labels hold two classes
    order = [run.pool[i] for i in rng.permutation(len(run.pool))]
    want = schedule.round_size(0, len(run.pool))
    cut: str | None = None
    while True:
        chosen, cut = run.affordable(order[len(run.train_ids):len(run.train_ids) + want],
                                     committed=dev_cost if dev else 0.0)
        if chosen or dev:
            run.buy(chosen, 0, "initial", dev=dev)
            dev = []
        _, labels = task.usable(oracle.current(run.train_ids)) if run.train_ids else ([], np.zeros(0))
        if task.n_usable_classes(labels) >= 2 or not chosen or cut or len(run.train_ids) >= len(run.pool):
            break
        want = schedule.batch
        log(f"round 0: usable labels hold {task.n_usable_classes(labels)} class(es); "
            f"buying {want} more at random")
    run.fit_and_score(0, start)
    if not run.fitted:
        n_ok = len(task.usable(oracle.current(run.train_ids))[0]) if run.train_ids else 0
        reason = cut if cut and not run.train_ids else NO_TWO_CLASSES
        message = run.finish(reason, 0, f"{len(run.train_ids)} labels bought, {n_ok} usable")
        return _result(run, reason, message)
    run.check_stop(0)

    for rnd in range(1, schedule.n_rounds + 1):
        if cut:
            reason = cut
            break
        start = time.perf_counter()
        bought = set(run.train_ids)
        candidates = [i for i in run.pool if i not in bought]
        if not candidates:
            reason = POOL_EXHAUSTED
            break
        ranked = run.query(strategy, candidates, schedule.round_size(rnd, len(run.pool)), rng, seed)
        chosen, cut = run.affordable(ranked)
        if not chosen:
            reason = cut or POOL_EXHAUSTED
            break
        if options.discrepancy_alpha is not None:
            predicted = classifier.predict_proba(chosen).argmax(axis=1)
            run.predicted_at_query.update(zip(chosen, (int(p) for p in predicted)))
        run.buy(chosen, rnd, "al")
        run.fit_and_score(rnd, start)
        if run.check_stop(rnd):
            reason = STOP_CRITERION
            break
    else:
        reason = cut or COMPLETED
    message = run.finish(reason, int(run.rows[-1]["round"]))
    return _result(run, reason, message)


def _meta_ids(task: Any, options: TrainingOptions, demonstrations: Sequence[str]) -> list[str]:
    """The gold meta set of learning to reweight (none without it): drawn from dev, or the
    condition's demonstration pool (`meta_set: demonstrations`)."""
    if not options.reweight:
        return []
    if options.meta_set == "demonstrations":
        if not demonstrations:
            raise ValueError("training.reweight.meta_set demonstrations: the condition's annotator "
                             "has no k-NN demonstration pool (annotators.<name>.demonstrations)")
        return list(demonstrations)
    return draw_meta_ids(task.ids["dev"], size=int(options.meta_size), seed=options.meta_seed)


def _result(run: _Run, reason: str, message: str) -> ALResult:
    task = run.task
    queried = pd.DataFrame(run.queried, columns=QUERIED_COLUMNS)
    queried["label"] = pd.array(queried["label"], dtype="Int64")
    ledger = run.ledger.frame()
    return ALResult(pd.DataFrame(run.rows), queried, task.predictions(run.probs_test), ledger, {
        "n_pool": len(run.pool), "n_dev": len(run.dev_ids), "n_test": len(task.ids["test"]),
        "n_meta": 0 if run.meta is None else len(run.meta[0]),
        "n_aggregator_gold": run.n_aggregator_gold,
        "n_demonstrations": run.ledger.count("demonstrations"),
        **run.ledger.costs(), "stop_reason": reason, "stop_message": message,
        "oracle": run.oracle.stats(),
        **({"stopping": run.monitor.summary()} if run.monitor is not None else {}),
    })
