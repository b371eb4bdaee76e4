"""Whether a config's aggregate draws the cost-quality frontier (llmal.results.frontier), and its
files: light, read while Snakemake plans."""
from __future__ import annotations

from typing import Any, Mapping

FRONTIER_FILES = ("tables/frontier.csv", "tables/frontier.md", "figures/frontier.png", "figures/frontier.svg",
                  "figures/frontier.pdf")


def frontier_enabled(config: Mapping[str, Any]) -> bool:
    """aggregate.frontier, else on when a condition's annotator is routed (so grids without
    routing keep exactly their tables)."""
    setting = (config.get("aggregate") or {}).get("frontier")
    if setting is not None:
        return bool(setting)
    annotators = config.get("annotators") or {}
    return any((annotators.get(c.get("annotator")) or {}).get("kind") == "routed"
               for c in (config.get("conditions") or {}).values())
