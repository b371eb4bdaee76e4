"""The oracle of a routed annotator (`kind: routed`): its primary labels every acquired item;
the items the routing rule picks (llmal.annotate.routing) go on to its fallback, whose answer
replaces the primary's.

The primary is always paid, the fallback only for the items routed to it; `acquire` reports
both as SourceParts, so the run's ledger lists every label under its real source. The rule's
`fallback_share` ranks the items of one acquisition (a round; round 0 buys the dev labels and
the initial set in one call) by the primary's confidence. An item's route is decided when it is
bought and kept: asking again costs nothing and answers the same source.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.annotate.routing import route_reasons
from llmal.engine.oracle import Bought, Oracle, OracleError, SourcePart


class RoutedOracle(Oracle):
    def __init__(self, name: str, primary: Oracle, fallback: Oracle, rule: Mapping[str, Any]) -> None:
        self.name = name
        self.primary, self.fallback = primary, fallback
        self.members = {primary.name: primary, fallback.name: fallback}   # oracles_in walks them
        self.rule = dict(rule)
        self._route: dict[str, str] = {}   # id -> reason ("" = the primary's answer is kept)

    def visible(self) -> set[str] | None:
        return self.primary.visible()

    def routed_share(self) -> float | None:
        """The share of the items bought so far that went to the fallback (None before any)."""
        if not self._route:
            return None
        return sum(1 for r in self._route.values() if r) / len(self._route)

    def estimate(self, ids: Sequence[str]) -> np.ndarray:
        """The primary's price plus the fallback's times the share expected to be routed: the
        share so far, before any purchase `fallback_share` when it is the only rule, else all
        (an upper bound, so a dollar budget is not overrun by the first round)."""
        ids = [str(i) for i in ids]
        share = self.routed_share()
        if share is None:
            only_share = self.rule.get("threshold") is None and self.rule.get("fallback_share")
            share = float(self.rule["fallback_share"]) if only_share else 1.0
        todo = [i for i in ids if i not in self._route]
        fallback = dict(zip(todo, self.fallback.estimate(todo))) if todo else {}
        extra = np.array([fallback.get(i, 0.0) * share for i in ids])
        return self.primary.estimate(ids) + extra

    def acquire(self, ids: Sequence[str]) -> Bought:
        ids = [str(i) for i in ids]
        first = {i: n for n, i in reversed(list(enumerate(ids)))}
        new = [i for i in dict.fromkeys(ids) if i not in self._route]
        got = self.primary.acquire(ids)
        parts = list(got.sources(self.primary.name))
        charged = got.charged.astype(float).copy()
        if new:
            rows = got.table.iloc[[first[i] for i in new]].reset_index(drop=True)
            reasons = route_reasons(rows, self.rule)
            routed = [i for i, r in zip(new, reasons) if r]
            vis = self.fallback.visible()
            outside = [i for i in routed if vis is not None and i not in vis]
            if outside:
                raise OracleError(f"annotator {self.name!r}: id {outside[0]!r} is routed to "
                                  f"{self.fallback.name!r}, which cannot label it (its `limit` sample)")
            self._route.update(zip(new, reasons))
            if routed:
                back = self.fallback.acquire(routed)
                where = np.array([first[i] for i in routed])
                for part in back.sources(self.fallback.name):
                    parts.append(SourcePart(part.source, where[part.positions], part.status, part.charged))
                np.add.at(charged, where, back.charged)
        return Bought(self.current(ids), charged, parts)

    def current(self, ids: Sequence[str]) -> pd.DataFrame:
        ids = [str(i) for i in ids]
        unknown = [i for i in ids if i not in self._route]
        if unknown:
            raise OracleError(f"annotator {self.name!r}: id {unknown[0]!r} was never acquired")
        kept = [i for i in ids if not self._route[i]]
        routed = [i for i in ids if self._route[i]]
        frames = []
        if kept:
            frames.append(self.primary.current(kept).assign(source=self.primary.name, route=""))
        if routed:
            frames.append(self.fallback.current(routed).assign(
                source=self.fallback.name, route=[self._route[i] for i in routed]))
        table = pd.concat(frames, ignore_index=True)
        return table.set_index(table["id"].astype(str), drop=False).loc[ids].reset_index(drop=True)

    def demonstration_ids(self) -> list[str]:
        out = self.primary.demonstration_ids()
        return out + [d for d in self.fallback.demonstration_ids() if d not in out]

    def gold_ids(self) -> list[str]:
        out = self.primary.gold_ids()
        return out + [g for g in self.fallback.gold_ids() if g not in out]

    def receive_gold(self, labels: Mapping[str, int]) -> None:
        self.primary.receive_gold(labels)
        self.fallback.receive_gold(labels)

    def stats(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for r in self._route.values():
            if r:
                reasons[r] = reasons.get(r, 0) + 1
        return {"routed": sum(reasons.values()), "items": len(self._route),
                "routed_share": self.routed_share() or 0.0, "reasons": reasons,
                "members": {m: o.stats() for m, o in self.members.items()}}
