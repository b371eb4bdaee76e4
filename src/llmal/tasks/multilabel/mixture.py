"""A mixture of label-set annotators, aggregated per label: `majority` (a label is in the set
when more than half of the members who answered give it; a tie leaves it out) or `mean` (when
the mean of the members' per-label probabilities, a member's 0/1 answer where it has no
`probs`, exceeds `threshold`, default 0.5). The row's cost is the members' costs together."""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import make_annotations
from llmal.tasks.multilabel.labels import from_indicator, names_of, to_indicator


def aggregate_per_label(tables: Mapping[str, pd.DataFrame], spec: Mapping[str, Any],
                        names: Sequence[str]) -> pd.DataFrame:
    method = str(spec.get("method", "majority"))
    if method not in ("majority", "mean"):
        raise ValueError(f"mixture method {method!r}: task multilabel aggregates per label by majority or mean")
    members = list(tables)
    ids = list(dict.fromkeys(i for t in tables.values() for i in t["id"].astype(str)))
    n = len(names)
    votes = np.zeros((len(ids), n))
    answered = np.zeros(len(ids))
    cost = np.zeros(len(ids))
    pos = {i: k for k, i in enumerate(ids)}
    for m in members:
        t = tables[m]
        rows = t["id"].astype(str).map(pos).to_numpy()
        np.add.at(cost, rows, t["cost_usd"].to_numpy(float))
        ok = (t["status"] == "ok").to_numpy()
        np.add.at(votes, rows[ok], to_indicator(t.loc[ok, "label"].to_numpy(dtype=np.int64), n))
        np.add.at(answered, rows[ok], 1)
    share = votes / np.maximum(answered, 1)[:, None]
    chosen = share > (0.5 if method == "majority" else float(spec.get("threshold", 0.5)))
    labels = pd.Series(from_indicator(chosen), dtype="Int64").mask(answered == 0)
    return make_annotations({
        "id": ids, "label": labels, "status": np.where(answered > 0, "ok", "failed"),
        "answers": ["{}" if pd.isna(v) else json.dumps({"labels": names_of(int(v), names)}) for v in labels],
        "probs": [json.dumps({"label": dict(zip(names, map(float, s)))}) for s in share],
        "cost_usd": cost, "model": f"mixture:{method}({','.join(members)})",
    })
