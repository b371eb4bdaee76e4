"""Golden renderings of the first two invariants of issue 18 (request bodies, run-spec hashes).

Both are written by today's code to tests/golden/ and compared by tests/test_golden.py; a
refactor must keep them byte-identical (money: the LLM response cache is keyed by the request
body's sha256 and the backend; results: an AL run reruns when its spec changes).

1. Request bodies (`request_goldens`): for every config in config/*.yaml with LLM annotators
   (kinds openai, openai_batch, vllm, local) and the extra configs in tests/golden/ that cover
   what no shipped config uses (k-NN demonstrations, samples, n, logprobs, a mixture of LLMs,
   NER demonstrations), the requests the pipeline sends are captured at the executor (the one
   place every request passes; nothing is sent, nothing is cached) along two paths:
   - `annotate`: every LLM annotator through llmal.annotate.run.annotate, what the annotate
     rule runs. Annotators with a `limit` or `demonstrations` get all items (their sample and
     their gold pool depend on all of them); the others get the first N_ITEMS pool/dev items in
     item order (an item's request does not depend on the other items; NER pairs with
     `sentences_per_prompt` stay the same since N_ITEMS is even).
   - `lazy`: every lazy condition whose annotator tree holds an LLM: its oracle built as the
     runner builds it (llmal.engine.oracles.build_oracle from config.run_spec), asked once
     about the first N_LAZY items it may label.
   Stored per annotator: the backend identity (the other half of the cache key), the number of
   items and distinct requests, item id -> custom_id (sha256 of the body), and one whole body:
   the first request's on synthetic data (dataset kind demo), else a placeholder item's (no
   text of GAHD or MasakhaNER is ever stored, only hashes).
   Configs on the shared data (/work/shared/data: GAHD, MasakhaNER, next to the clone as
   ../shared/data) are skipped when it is absent.
2. Run-spec hashes (`spec_hash_goldens`): for every config in config/*.yaml, run path ->
   config_hash, as run.json records it (llmal.config.spec_hash of llmal.config.run_spec).

Regenerate (only when a change of bodies or specs is intended and paid for):
    PYTHONPATH=src .venv/bin/python tests/golden_render.py --write
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import pandas as pd

from llmal.tasks.registry import task_of

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "config"
GOLDEN_DIR = ROOT / "tests" / "golden"
EXTRA_CONFIGS = ("coverage.yaml", "coverage_ner.yaml")   # in GOLDEN_DIR: what no shipped config uses
REQUESTS_FILE = GOLDEN_DIR / "requests.json"
SPEC_HASHES_FILE = GOLDEN_DIR / "spec_hashes.json"
SHARED_DATA = ROOT.parent / "shared" / "data"
SHARED = {"gahd": SHARED_DATA / "gahd" / "gahd_disaggregated.csv",
          "masakhaner": SHARED_DATA / "masakhaner2"}
N_ITEMS = 40   # pool/dev items per annotator without limit or demonstrations (even: NER pairs)
N_LAZY = 20    # items a lazy oracle is asked about (even)
PLACEHOLDER = [["GOLDEN", "placeholder", "one", "."], ["GOLDEN", "placeholder", "two", "."]]


def shipped_configs() -> list[Path]:
    return sorted(CONFIG_DIR.glob("*.yaml"))


def request_configs() -> list[Path]:
    return [p for p in shipped_configs() if has_llm(p)] + [GOLDEN_DIR / n for n in EXTRA_CONFIGS]


def config_key(path: Path) -> str:
    return str(path.resolve().relative_to(ROOT))


def load(path: Path) -> dict[str, Any]:
    from llmal.config import load_config

    return load_config(path)


def has_llm(path: Path) -> bool:
    from llmal.config import LLM_KINDS

    return any(s["kind"] in LLM_KINDS for s in load(path)["annotators"].values())


# ------------------------------------------------------------------------------ spec hashes
def spec_hashes(path: Path) -> dict[str, str]:
    """Run path -> config_hash of every run of the config (what run.json records)."""
    from llmal.config import expand_runs, run_spec, spec_hash

    config = load(path)
    dataset = config["dataset"]["name"]
    return {run.path(dataset): spec_hash(run_spec(config, run.condition, run.encoder))
            for run in expand_runs(config)}


def spec_hash_goldens() -> dict[str, dict[str, str]]:
    return {config_key(p): spec_hashes(p) for p in shipped_configs()}


# ------------------------------------------------------------------------------ requests
def shared_data_missing(config: dict[str, Any]) -> str | None:
    """Why the config's dataset cannot be read here (None: it can)."""
    kind = config["dataset"]["kind"]
    if kind in SHARED and not SHARED[kind].exists():
        return f"dataset kind {kind} reads {SHARED[kind]}, which is absent"
    return None


def prepare(config: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items and split as the prepare rule makes them; GAHD and MasakhaNER from the shared copy."""
    dataset = dict(config["dataset"])
    if dataset["kind"] == "gahd":
        dataset.setdefault("path", str(SHARED["gahd"]))
    if dataset["kind"] == "masakhaner":
        dataset.setdefault("path", str(SHARED["masakhaner"] / str(dataset.get("language", "tsn"))))
    with tempfile.TemporaryDirectory() as tmp:
        return task_of(config).prepare(dataset, config["labels"], config.get("split", {}), cache_dir=tmp)


class Capture:
    """An executor that records the request lines it is given and answers none (so every row
    fails and nothing is cached)."""
    name = "golden-capture"

    def __init__(self, sink: list[dict[str, Any]]) -> None:
        self.sink = sink

    def run(self, requests: Any, store: Any) -> None:
        self.sink.extend(json.loads(json.dumps(r)) for r in requests)


@contextmanager
def captured() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Request lines by annotator (the last part of the executor's state_dir, which is the
    annotator's name on both paths), sent to no one."""
    import llmal.llm.fetch as fetch_module

    sent: dict[str, list[dict[str, Any]]] = {}

    def make_executor(spec: Any, *, state_dir: Path) -> Capture:
        return Capture(sent.setdefault(Path(state_dir).name, []))

    with mock.patch.object(fetch_module, "make_executor", make_executor):
        yield sent


def embeddings(config: dict[str, Any], items: pd.DataFrame, split: pd.DataFrame,
               encoders: set[str], where: Path) -> dict[str, Path]:
    """Encoder -> its embeddings file, made as the embed rule makes it."""
    from llmal.models.encoders import encode, fit_mask, save_features

    out = {}
    ids = items["id"].astype(str).tolist()
    for name in sorted(encoders):
        spec = config["encoders"][name]
        path = where / f"{name}.npz"
        save_features(encode(ids, items["text"].tolist(), spec, fit_mask(ids, split, spec)), path)
        out[name] = path
    return out


def first_visible(items: pd.DataFrame, split: pd.DataFrame, n: int) -> list[str]:
    visible = set(split.loc[split["split"].isin(["pool", "dev"]), "id"].astype(str))
    return [i for i in items["id"].astype(str) if i in visible][:n]


def summarise(table: pd.DataFrame, lines: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    if not lines:
        raise AssertionError("no request reached the executor: the capture seam moved")
    return {"kind": kind, "backend": str((table.attrs.get("llm") or {}).get("backend", "")),
            "items": int(len(table)), "requests": len({line["custom_id"] for line in lines}),
            "custom_ids": dict(zip(table["id"].astype(str), table["request_id"].astype(str)))}


def annotate_config(config: dict[str, Any], spec: dict[str, Any], cache_dir: Path) -> dict[str, Any]:
    """What the annotate rule passes as `config` (workflow/rules/common.smk annotate_config)."""
    prices = config.get("prices") or {}
    return {"labels": config["labels"], "cache_dir": str(cache_dir),
            "prices": {m: p for m, p in prices.items() if m == str(spec["model"])}}


def render_annotate(config: dict[str, Any], items: pd.DataFrame, split: pd.DataFrame,
                    emb: dict[str, Path], tmp: Path) -> dict[str, Any]:
    from llmal.annotate.run import annotate
    from llmal.config import LLM_KINDS, demonstration_encoder

    out = {}
    for name, spec in config["annotators"].items():
        if spec["kind"] not in LLM_KINDS:
            continue
        subset = items
        if spec.get("limit") is None and not spec.get("demonstrations"):
            keep = set(first_visible(items, split, N_ITEMS))
            subset = items[items["id"].astype(str).isin(keep)]
        encoder = demonstration_encoder(config, spec)
        with captured() as sent:
            table = annotate(subset, split, spec, annotate_config(config, spec, tmp / f"cache-{name}"),
                             name=name, embeddings_path=emb.get(encoder) if encoder else None,
                             log=lambda _m: None, task=task_of(config))
        out[name] = summarise(table, sent.get(name, []), spec["kind"])
        if config["dataset"]["kind"] == "demo":   # synthetic text: the first body as it is
            out[name]["body"] = sent[name][0]["body"]
        elif not spec.get("demonstrations"):
            out[name]["placeholder_body"] = placeholder_body(config, name, spec, tmp)
    return out


def placeholder_body(config: dict[str, Any], name: str, spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """The body of one request for made-up items: the template part of the body, no dataset text."""
    from llmal.annotate.run import annotate
    from llmal.tasks.ner.data import TOKENS

    ids = [f"golden-{n}" for n in range(len(PLACEHOLDER))]
    items = pd.DataFrame({"id": ids, "text": [" ".join(t) for t in PLACEHOLDER],
                          TOKENS: [json.dumps(t) for t in PLACEHOLDER]})
    split = pd.DataFrame({"id": ids, "split": "pool"})
    with captured() as sent:
        annotate(items, split, spec, annotate_config(config, spec, tmp / f"cache-placeholder-{name}"),
                 name=name, log=lambda _m: None, task=task_of(config))
    return sent[name][0]["body"]


def render_lazy(config: dict[str, Any], items: pd.DataFrame, split: pd.DataFrame,
                emb: dict[str, Path], tmp: Path) -> dict[str, Any]:
    """Each lazy condition's oracle (built as llmal.runner.run_al builds it) asked about the
    first N_LAZY items it may label."""
    from llmal.config import LLM_KINDS, annotation_mode, annotator_tree, condition_encoders, run_spec
    from llmal.engine.oracles import build_oracle
    from llmal.models.encoders import load_features

    out: dict[str, Any] = {}
    annotators = config["annotators"]
    for cname, cond in config["conditions"].items():
        if annotation_mode(config, cname) != "lazy" or not any(
                annotators[a]["kind"] in LLM_KINDS for a in annotator_tree(annotators, cond["annotator"])):
            continue
        spec = run_spec(config, cname, condition_encoders(config, cname)[0])
        llm = {"labels": spec["labels"], **(spec.get("llm") or {}), "cache_dir": str(tmp / f"cache-lazy-{cname}")}
        tables = table_members(config, spec, items, split)
        with captured() as sent:
            oracle = build_oracle(spec["annotator"], annotators=spec["annotators"], mode=spec["annotation"],
                                  items=items, split=split, tables=tables, llm=llm,
                                  embeddings={e: load_features(emb[e]) for e in spec["llm"]["demo_encoders"]},
                                  state_dir=tmp / "runs" / cname, task=task_of(spec), log=lambda _m: None)
            visible = oracle.visible()
            ids = [i for i in first_visible(items, split, len(items))
                   if visible is None or i in visible][:N_LAZY]
            oracle.acquire(ids)
        llms = [a for a in annotator_tree(annotators, cond["annotator"]) if annotators[a]["kind"] in LLM_KINDS]
        out[cname] = {}
        for who in llms:
            lines = sent.get(who, [])
            if not lines:
                raise AssertionError(f"condition {cname}: no request of {who} reached the executor")
            by_cid = {line["custom_id"] for line in lines}
            out[cname][who] = {"requests": len(by_cid), "custom_ids": sorted(by_cid)}
    return out


def table_members(config: dict[str, Any], spec: dict[str, Any], items: pd.DataFrame,
                  split: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The human/simulated tables a lazy run replays (mixture members beside its LLMs)."""
    from llmal.annotate.run import annotate
    from llmal.config import TABLE_KINDS

    return {a: annotate(items, split, s, {"labels": config["labels"]}, name=a, log=lambda _m: None,
                        task=task_of(config))
            for a, s in spec["annotators"].items() if s["kind"] in TABLE_KINDS}


def render_config(path: Path) -> dict[str, Any]:
    """The golden entry of one config (FileNotFoundError when its shared data is absent)."""
    from llmal.config import demonstration_encoder, run_demo_encoders

    config = load(path)
    missing = shared_data_missing(config)
    if missing:
        raise FileNotFoundError(missing)
    items, split = prepare(config)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        encoders = {e for s in config["annotators"].values() if (e := demonstration_encoder(config, s))}
        encoders |= {e for c in config["conditions"] for e in run_demo_encoders(config, c)}
        emb = embeddings(config, items, split, encoders, tmp / "embeddings")
        return {"annotate": render_annotate(config, items, split, emb, tmp),
                "lazy": render_lazy(config, items, split, emb, tmp)}


def request_goldens(paths: list[Path] | None = None) -> dict[str, Any]:
    return {config_key(p): render_config(p) for p in (paths or request_configs())}


def dump(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the golden files (intended changes only)")
    args = parser.parse_args(argv)
    if not args.write:
        parser.print_help()
        return 2
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    dump(spec_hash_goldens(), SPEC_HASHES_FILE)
    dump({"n_items": N_ITEMS, "n_lazy": N_LAZY, "configs": request_goldens()}, REQUESTS_FILE)
    print(f"wrote {SPEC_HASHES_FILE.relative_to(ROOT)} and {REQUESTS_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
