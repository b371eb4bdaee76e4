"""The ledger of one AL run: one row per label obtained, with what it cost.

Every label the run uses is bought through an oracle and written here: the initial set, the AL
queries, the dev labels (charged whatever their status), the clean meta set and the k-NN
demonstration pool (human gold). `rounds.csv`, `run.json` and every table report costs from it,
so they cannot disagree. File: results/{ds}/runs/.../ledger.parquet.
"""
from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

PURPOSES = ("initial", "al", "dev", "meta", "demonstrations")
LEDGER_COLUMNS = ["id", "round", "purpose", "source", "status", "cost_usd"]
# which purposes each cost column of rounds.csv sums
COST_GROUPS = {"cost_al": ("initial", "al"), "cost_dev": ("dev",), "cost_gold": ("meta", "demonstrations")}


class Ledger:
    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def record(self, ids: Iterable[str], *, round: int, purpose: str, source: str,
               status: Iterable[str], cost_usd: Iterable[float]) -> float:
        """Add one row per id; returns what these rows cost together."""
        if purpose not in PURPOSES:
            raise ValueError(f"ledger purpose {purpose!r} is not one of {PURPOSES}")
        total = 0.0
        for item, st, cost in zip(ids, status, cost_usd, strict=True):
            self._rows.append({"id": str(item), "round": int(round), "purpose": purpose,
                               "source": source, "status": str(st), "cost_usd": float(cost)})
            total += float(cost)
        return total

    def costs(self) -> dict[str, float]:
        """cost_al, cost_dev, cost_gold and cost_total so far."""
        by_purpose: dict[str, float] = {p: 0.0 for p in PURPOSES}
        for row in self._rows:
            by_purpose[row["purpose"]] += row["cost_usd"]
        out = {col: sum(by_purpose[p] for p in purposes) for col, purposes in COST_GROUPS.items()}
        out["cost_total"] = sum(by_purpose.values())
        return out

    @property
    def total(self) -> float:
        return self.costs()["cost_total"]

    def count(self, *purposes: str) -> int:
        return sum(1 for row in self._rows if row["purpose"] in purposes)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self._rows, columns=LEDGER_COLUMNS)
        df["round"] = df["round"].astype("int64")
        df["cost_usd"] = df["cost_usd"].astype("float64")
        return df

