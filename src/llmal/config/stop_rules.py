"""What a config's stopping criteria (`al.stop`) need beyond the schema: dev labels for the dev-F1
plateau, a task whose runs can check them, and query rounds to check them on."""
from __future__ import annotations

from typing import Any

from llmal.config.grid import al_settings
from llmal.stopping.registry import CRITERIA
from llmal.tasks.registry import CAPABILITIES, task_name


def stop_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) of every condition whose `al.stop` cannot work as configured."""
    out: list[tuple[str, str]] = []
    name = task_name(config)
    allowed = CAPABILITIES[name].stop_criteria
    for cname, cond in (config.get("conditions") or {}).items():
        own = "stop" in (cond.get("al") or {})
        stop = al_settings(config, cname).get("stop")
        if not stop:
            continue
        where = f"conditions.{cname}.al.stop" if own else "al.stop"
        if cond["sampler"] == "full":
            if own:
                out.append((where, f"condition {cname} has sampler full (one round): no stopping "
                            "criterion can be checked; remove al.stop there"))
            continue
        settings = al_settings(config, cname)
        for crit in stop.get("criteria") or {}:
            if allowed is not None and crit not in allowed:
                out.append((f"{where}.criteria.{crit}", f"task {name} cannot check {crit} "
                            f"(condition {cname}; it can: {list(allowed)})"))
            elif CRITERIA[crit].reads == "dev_f1" and not settings.get("dev_labels", True):
                out.append((f"{where}.criteria.{crit}", f"condition {cname} buys no dev labels "
                            "(al.dev_labels: false), so there is no dev F1 to watch"))
    return out
