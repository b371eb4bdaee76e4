"""Oracles: where an AL run gets its labels, one `acquire(ids)` at a time.

- TableOracle replays an annotation table (human, simulated, or an LLM annotated up front):
  it reveals an item's answer only when the item is acquired.
- LazyOracle asks a backend (an LLM through the executors and the response cache) about only
  the items acquired, one call (one Batch API batch) per `acquire`.
- MixtureOracle asks its members' oracles and fits its aggregation (majority, Dawid-Skene,
  mean) on the items it has acquired so far only, again whenever `current` is asked.
- GoldSource sells human gold (the clean meta set, the k-NN demonstration pool).

Every oracle is stateful for one run: an item is paid for once (asking again costs nothing),
and duplicate texts that share one request (`request_id`) pay that request once, in full. What
`acquire` returns as `charged` is exactly what the run pays for that call; the run's ledger
records it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import make_annotations


class OracleError(ValueError):
    """An oracle was asked about an item it cannot label; the message names the item."""


@dataclass
class Bought:
    """The answers to one `acquire(ids)`: annotation rows in the order of ids, and what each
    item cost in this call (0 for an item, or a request, paid for before).

    `parts`: who was paid, for an oracle whose labels come from several sources (a routed
    annotator: its primary for every item, its fallback for the routed ones), as SourceParts
    whose charges add up to `charged`; None: the oracle itself gave every row."""
    table: pd.DataFrame
    charged: np.ndarray
    parts: list["SourcePart"] | None = None

    @property
    def total(self) -> float:
        return float(self.charged.sum())

    def sources(self, own: str) -> list["SourcePart"]:
        """The ledger rows of this purchase, one SourcePart per source (`own`: the oracle's name)."""
        if self.parts is not None:
            return self.parts
        return [SourcePart(own, np.arange(len(self.charged)), self.table["status"].astype(str).to_numpy(),
                           self.charged)]


@dataclass
class SourcePart:
    """The rows one source was asked in one purchase: positions into its ids, their status
    from that source, and what each cost."""
    source: str
    positions: np.ndarray
    status: np.ndarray
    charged: np.ndarray


class Oracle:
    """The interface every oracle implements (see the module docstring)."""
    name: str

    def visible(self) -> set[str] | None:
        """The items this oracle can label (an LLM annotator's `limit` sample); None: every item."""
        return None

    def estimate(self, ids: Sequence[str]) -> np.ndarray:
        """What acquiring `ids` (in this order) would cost, per item, before asking."""
        raise NotImplementedError

    def acquire(self, ids: Sequence[str]) -> Bought:
        raise NotImplementedError

    def current(self, ids: Sequence[str]) -> pd.DataFrame:
        """The current answers (annotation rows, in order) for items acquired before."""
        raise NotImplementedError

    def demonstration_ids(self) -> list[str]:
        """Gold items this oracle's prompts show (charged to the run as demonstrations)."""
        return []

    def gold_ids(self) -> list[str]:
        """Dev items whose human gold a learned aggregation trains on (the run buys them in
        round 0, purpose meta, with the members' answers on them, and hands them over with
        `receive_gold`)."""
        return []

    def receive_gold(self, labels: Mapping[str, int]) -> None:
        """The gold labels of `gold_ids()`, bought by the run (a no-op for most oracles)."""

    def stats(self) -> dict[str, Any]:
        """What run.json records about this oracle (requests sent, cache hits, ...)."""
        return {}


class AnswerOracle(Oracle):
    """Shared bookkeeping: rows bought so far, requests paid, per-item charging."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._parts: list[pd.DataFrame] = []      # rows bought, per acquisition (contract columns)
        self._frame: pd.DataFrame | None = None   # their concatenation, indexed by id
        self._have: set[str] = set()
        self._paid_requests: set[str] = set()

    # subclasses: rows for new items (contract columns), and a price quote for new items
    def _fetch(self, ids: list[str]) -> pd.DataFrame:
        raise NotImplementedError

    def _quote(self, ids: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _charges(self, ids: Sequence[str], cost: Sequence[float], request: Sequence[str]) -> np.ndarray:
        """What each of `ids` (not bought yet, in order) costs: its full price, or nothing when
        an earlier item (now or before) already paid its request."""
        paid = set(self._paid_requests)
        out = np.zeros(len(ids))
        for n, (item, c, rid) in enumerate(zip(ids, cost, request)):
            if item in self._have:
                continue
            if rid and rid in paid:
                continue
            if rid:
                paid.add(rid)
            out[n] = c
        return out

    def estimate(self, ids: Sequence[str]) -> np.ndarray:
        ids = [str(i) for i in ids]
        new = [i for i in dict.fromkeys(ids) if i not in self._have]
        quote = dict(zip(new, self._quote(new))) if new else {}
        seen: set[str] = set()
        out = np.zeros(len(ids))
        for n, item in enumerate(ids):
            if item in quote and item not in seen:
                out[n] = quote[item]
                seen.add(item)
        return out

    def acquire(self, ids: Sequence[str]) -> Bought:
        ids = [str(i) for i in ids]
        new = [i for i in dict.fromkeys(ids) if i not in self._have]
        charged = np.zeros(len(ids))
        if new:
            fetched = self._fetch(new).drop_duplicates("id")
            fetched = fetched.set_index(fetched["id"].astype(str), drop=False)
            missing = [i for i in new if i not in fetched.index]
            if missing:
                raise OracleError(f"annotator {self.name!r} has no answer for id {missing[0]!r} "
                                  f"({len(missing)} of {len(new)} asked)")
            fetched = fetched.loc[new]
            per_new = self._charges(new, fetched["cost_usd"].astype(float).tolist(),
                                    fetched["request_id"].astype(str).tolist())
            first = {i: n for n, i in reversed(list(enumerate(ids)))}
            for item, cost in zip(new, per_new):
                charged[first[item]] = cost
            self._parts.append(fetched)
            self._frame = None
            self._have.update(new)
            self._paid_requests.update(r for r in fetched["request_id"].astype(str) if r)
        return Bought(self.current(ids), charged)

    def _bought(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = (pd.concat(self._parts) if self._parts
                           else make_annotations({"id": []}).set_index("id", drop=False))
            self._parts = [self._frame]
        return self._frame

    def current(self, ids: Sequence[str]) -> pd.DataFrame:
        ids = [str(i) for i in ids]
        unknown = [i for i in ids if i not in self._have]
        if unknown:
            raise OracleError(f"annotator {self.name!r}: id {unknown[0]!r} was never acquired")
        return self._bought().loc[ids].reset_index(drop=True)


class TableOracle(AnswerOracle):
    """Replays an annotation table; an item's answer is revealed only when it is acquired."""

    def __init__(self, name: str, table: pd.DataFrame, demonstrations: Sequence[str] = (),
                 gold: Sequence[str] = ()) -> None:
        super().__init__(name)
        table = make_annotations(table)   # tables written before optional columns existed
        self._table = table.set_index(table["id"], drop=False)
        self._visible = set(self._table.index)
        self._demos = [str(d) for d in demonstrations]
        self._gold_ids = [str(g) for g in gold]

    def visible(self) -> set[str] | None:
        return self._visible

    def demonstration_ids(self) -> list[str]:
        return list(self._demos)

    def gold_ids(self) -> list[str]:
        """The gold set the table's learned aggregation was fitted on (charged to the run)."""
        return list(self._gold_ids)

    def _lookup(self, ids: list[str]) -> pd.DataFrame:
        absent = [i for i in ids if i not in self._table.index]
        if absent:
            raise OracleError(f"annotator {self.name!r}: its annotation table has no row for id "
                              f"{absent[0]!r} ({len(absent)} missing)")
        return self._table.loc[ids]

    def _fetch(self, ids: list[str]) -> pd.DataFrame:
        return self._lookup(ids).reset_index(drop=True)

    def _quote(self, ids: list[str]) -> np.ndarray:
        rows = self._lookup(ids)
        return self._charges(ids, rows["cost_usd"].astype(float).tolist(),
                             rows["request_id"].astype(str).tolist())


class LazyOracle(AnswerOracle):
    """Asks `fetch(ids) -> annotation table` about newly acquired items only (one call each).

    Before anything is bought, `quote(ids)` prices new items (an estimate from the rendered
    requests); afterwards the mean cost of the requests bought so far is the estimate."""

    def __init__(self, name: str, fetch: Callable[[list[str]], pd.DataFrame],
                 quote: Callable[[list[str]], np.ndarray], visible: set[str] | None = None,
                 demonstrations: Sequence[str] = ()) -> None:
        super().__init__(name)
        self._fetch_fn, self._quote_fn = fetch, quote
        self._visible = visible
        self._demos = [str(d) for d in demonstrations]
        self.calls = 0
        self.items_sent = 0
        self.backend_stats: dict[str, float] = {}   # summed over calls: sent, cached, maybe_billed...

    def visible(self) -> set[str] | None:
        return self._visible

    def demonstration_ids(self) -> list[str]:
        return list(self._demos)

    def _fetch(self, ids: list[str]) -> pd.DataFrame:
        if self._visible is not None:
            outside = [i for i in ids if i not in self._visible]
            if outside:
                raise OracleError(f"annotator {self.name!r}: id {outside[0]!r} is outside the "
                                  f"items it may label (its `limit` sample)")
        self.calls += 1
        self.items_sent += len(ids)
        table = self._fetch_fn(ids)
        for key, value in (table.attrs.get("llm") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.backend_stats[key] = self.backend_stats.get(key, 0) + value
        return table

    def _quote(self, ids: list[str]) -> np.ndarray:
        costs = self._bought()["cost_usd"].astype(float) if self._have else pd.Series(dtype=float)
        paid = costs[costs > 0]
        if len(paid):
            return np.full(len(ids), float(paid.mean()))
        return np.asarray(self._quote_fn(ids), dtype=float)

    def stats(self) -> dict[str, Any]:
        """Calls and items asked; for an LLM also requests sent, answered from the cache, and
        possibly billed without an answer (timed out, or in flight at a kill)."""
        return {"calls": self.calls, "items_asked": self.items_sent, **self.backend_stats}


class MixtureOracle(Oracle):
    """Several oracles as one annotator; aggregation fitted on acquired items only.

    `aggregate(tables) -> annotation table` is the mixture's aggregation over its members' rows
    (llmal.tasks.classification.mixture.annotate_mixture); members shared with another mixture are the
    same oracle objects, so each is asked, and paid, once per item. A learned aggregation
    names its gold set (`gold`: dev ids); it is called as `aggregate(tables, gold=labels)` with
    the labels the run bought (`receive_gold`) and fitted on the acquired ones."""

    def __init__(self, name: str, members: Mapping[str, Oracle],
                 aggregate: Callable[..., pd.DataFrame], gold: Sequence[str] = ()) -> None:
        self.name = name
        self.members = dict(members)
        self._aggregate = aggregate
        self._gold_ids = [str(g) for g in gold]
        self._gold: dict[str, int] | None = None
        self._acquired: list[str] = []
        self._have: set[str] = set()
        self._fit_ids: tuple[str, ...] = ()
        self._fit: pd.DataFrame | None = None
        self.fits = 0

    def _member_ids(self, member: Oracle, ids: Sequence[str]) -> list[str]:
        vis = member.visible()
        return [i for i in ids if vis is None or i in vis]

    def visible(self) -> set[str] | None:
        if not hasattr(self, "_visible"):
            sets = [m.visible() for m in self.members.values()]
            self._visible = None if any(s is None for s in sets) else set().union(*sets)  # type: ignore[arg-type]
        return self._visible

    def estimate(self, ids: Sequence[str]) -> np.ndarray:
        ids = [str(i) for i in ids]
        out = np.zeros(len(ids))
        todo = [(n, i) for n, i in enumerate(ids) if i not in self._have]
        for member in self.members.values():
            asked = self._member_ids(member, [i for _, i in todo])
            est = dict(zip(asked, member.estimate(asked)))
            for n, i in todo:
                out[n] += est.get(i, 0.0)
        return out

    def acquire(self, ids: Sequence[str]) -> Bought:
        ids = [str(i) for i in ids]
        new = [i for i in dict.fromkeys(ids) if i not in self._have]
        charged = np.zeros(len(ids))
        first = {i: n for n, i in reversed(list(enumerate(ids)))}
        for member in self.members.values():
            asked = self._member_ids(member, new)
            if asked:
                got = member.acquire(asked)
                for item, cost in zip(asked, got.charged):
                    charged[first[item]] += cost
        self._acquired += new
        self._have.update(new)
        return Bought(self.current(ids), charged)

    def current(self, ids: Sequence[str]) -> pd.DataFrame:
        ids = [str(i) for i in ids]
        unknown = [i for i in ids if i not in self._have]
        if unknown:
            raise OracleError(f"annotator {self.name!r}: id {unknown[0]!r} was never acquired")
        if self._fit is None or self._fit_ids != tuple(self._acquired):
            tables = {}
            for m, member in self.members.items():
                asked = self._member_ids(member, self._acquired)
                tables[m] = member.current(asked) if asked else make_annotations({"id": []})
            if self._gold_ids:
                if self._gold is None:
                    raise OracleError(f"annotator {self.name!r}: its learned aggregation has no gold "
                                      "labels yet (the run buys them in round 0)")
                fitted = self._aggregate(tables, gold=self._gold)
            else:
                fitted = self._aggregate(tables)
            self._fit = fitted.set_index(fitted["id"].astype(str), drop=False)
            self._fit_ids = tuple(self._acquired)
            self.fits += 1
        return self._fit.loc[ids].reset_index(drop=True)

    def demonstration_ids(self) -> list[str]:
        out: list[str] = []
        for member in self.members.values():
            out += [d for d in member.demonstration_ids() if d not in out]
        return out

    def gold_ids(self) -> list[str]:
        out = list(self._gold_ids)
        for member in self.members.values():
            out += [g for g in member.gold_ids() if g not in out]
        return out

    def receive_gold(self, labels: Mapping[str, int]) -> None:
        if self._gold_ids:
            self._gold = {i: int(labels[i]) for i in self._gold_ids if i in labels}
            self._fit = None
        for member in self.members.values():
            member.receive_gold(labels)

    def stats(self) -> dict[str, Any]:
        return {"fits": self.fits, "members": {m: o.stats() for m, o in self.members.items()}}


class GoldSource:
    """Human gold labels, bought once per item at `price` each (meta sets, demonstration pools)."""
    name = "gold"

    def __init__(self, gold: Mapping[str, int], price: float) -> None:
        self._gold = {str(k): int(v) for k, v in gold.items()}
        self.price = float(price)
        self._have: set[str] = set()

    def acquire(self, ids: Sequence[str]) -> Bought:
        ids = [str(i) for i in ids]
        charged = np.zeros(len(ids))
        for n, item in enumerate(ids):
            if item not in self._gold:
                raise OracleError(f"gold: no gold label for id {item!r}")
            if item not in self._have:
                charged[n] = self.price
                self._have.add(item)
        table = make_annotations({"id": ids, "label": [self._gold[i] for i in ids],
                                  "status": "ok", "model": "gold",
                                  "cost_usd": self.price}) if ids else make_annotations({"id": []})
        return Bought(table, charged)


def oracles_in(oracle: Oracle) -> list[Oracle]:
    """The oracle and every member below it, each object once (shared members count once)."""
    out: list[Oracle] = []
    stack = [oracle]
    while stack:
        o = stack.pop(0)
        if any(o is seen for seen in out):
            continue
        out.append(o)
        stack += list(getattr(o, "members", {}).values())
    return out
