"""Golden invariants of issue 18: request bodies (LLM cache keys) and run-spec hashes.

The golden files in tests/golden/ were written by the code before the redesign; these tests
fail when a change alters a request body, a custom_id, a backend identity or a run's spec hash
of any shipped config. How they are rendered: tests/golden_render.py. The third invariant (the
default grid's tables) is checked by benchmarks/golden_tables.py (a 3-minute grid run).
Never regenerate the golden files to make these pass: a changed body is paid again.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import golden_render as g
import pytest


def _golden(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


SPEC_GOLDEN = _golden(g.SPEC_HASHES_FILE)
REQUEST_GOLDEN = _golden(g.REQUESTS_FILE)


def _json_diff(want: Any, got: Any, n: int = 30) -> str:
    a = json.dumps(want, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
    b = json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
    return "\n".join(list(difflib.unified_diff(a, b, "golden", "now", lineterm=""))[:n])


def _describe(want: dict[str, Any] | None, got: dict[str, Any] | None) -> list[str]:
    """What changed in one annotator's requests: counts, backend, custom_ids, the stored body."""
    if want is None or got is None:
        return ["not in the golden file" if want is None else "no longer rendered"]
    out = [f"{k}: {want.get(k)!r} -> {got.get(k)!r}" for k in ("kind", "backend", "items", "requests")
           if want.get(k) != got.get(k)]
    w, g_ = want.get("custom_ids"), got.get("custom_ids")
    if isinstance(w, dict) and isinstance(g_, dict):
        changed = sorted(k for k in set(w) | set(g_) if w.get(k) != g_.get(k))
        if changed:
            out.append(f"{len(changed)} of {len(w)} items changed their custom_id, e.g. "
                       + ", ".join(f"{k}: {str(w.get(k))[:12]} -> {str(g_.get(k))[:12]}" for k in changed[:3]))
    elif w != g_:
        out.append(f"custom_ids: {len(set(w) - set(g_))} gone, {len(set(g_) - set(w))} new")
    for key in ("body", "placeholder_body"):
        if want.get(key) != got.get(key):
            out.append(f"{key}:\n{_json_diff(want.get(key), got.get(key))}")
    return out


def _ids(paths: list[Path]) -> list[str]:
    return [g.config_key(p) for p in paths]


def test_every_shipped_config_is_pinned():
    assert sorted(SPEC_GOLDEN) == sorted(_ids(g.shipped_configs()))
    assert sorted(REQUEST_GOLDEN["configs"]) == sorted(_ids(g.request_configs()))
    assert (REQUEST_GOLDEN["n_items"], REQUEST_GOLDEN["n_lazy"]) == (g.N_ITEMS, g.N_LAZY)


@pytest.mark.parametrize("path", g.shipped_configs(), ids=_ids(g.shipped_configs()))
def test_run_spec_hashes_are_unchanged(path):
    want, got = SPEC_GOLDEN[g.config_key(path)], g.spec_hashes(path)
    changed = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not changed, (f"{len(changed)} of {len(want)} runs of {g.config_key(path)} changed their "
                         "spec hash (each would rerun), e.g. "
                         + "; ".join(f"{k}: {want.get(k)} -> {got.get(k)}" for k in changed[:3]))


@pytest.mark.parametrize("path", g.request_configs(), ids=_ids(g.request_configs()))
def test_request_bodies_are_unchanged(path):
    missing = g.shared_data_missing(g.load(path))
    if missing:
        pytest.skip(f"{g.config_key(path)}: {missing} (the shared data next to the clone, ../shared/data)")
    want, got = REQUEST_GOLDEN["configs"][g.config_key(path)], g.render_config(path)
    problems = []
    for stage in ("annotate", "lazy"):
        for name in sorted(set(want[stage]) | set(got[stage])):
            w, n = want[stage].get(name), got[stage].get(name)
            if w == n:
                continue
            if stage == "lazy":   # condition -> its LLM annotators
                w, n = w or {}, n or {}
                for who in sorted(set(w) | set(n)):
                    if w.get(who) != n.get(who):
                        problems += [f"lazy {name} {who}: {d}" for d in _describe(w.get(who), n.get(who))]
            else:
                problems += [f"annotate {name}: {d}" for d in _describe(w, n)]
    assert not problems, (f"{g.config_key(path)}: request bodies (the LLM cache keys) changed; "
                          "every changed one is paid again\n" + "\n".join(problems)[:8000])


def test_no_shared_dataset_text_is_stored():
    """Configs on GAHD or MasakhaNER keep hashes and placeholder bodies only."""
    for key, entry in REQUEST_GOLDEN["configs"].items():
        if g.load(g.ROOT / key)["dataset"]["kind"] != "demo":
            assert not any("body" in a for a in entry["annotate"].values()), key
