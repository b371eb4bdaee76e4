"""Every config and data check, all problems at once: the one check behind `llmal check`,
`llmal plan`, `snakemake -n` and a real run's planning (the Snakefile calls `plan_check`).

`check_config_file` / `check_config` return a list of Problems (errors and warnings), each
naming the config key or the file, column and row at fault. Nothing here needs Snakemake.

The dataset is read once and summarised (record count, split counts, topics, class counts, its
columns, the pool's classes, its own errors and warnings); the summary is cached under
`<cache_dir>/check/`, keyed by the sha256 and size of every dataset file and the
dataset/labels/split settings, so that planning a grid again reads nothing but the hash. A
precomputed annotator's file is read by its annotate job's own reader and cached the same way.
The demo dataset is never generated for this: its size and topics follow from the config.

What this machine lacks is a warning in a dry run (`llmal check`, `llmal plan`, `snakemake -n`)
and an error in a real run: the API-key variable of an annotator that calls a remote API (kinds
openai and openai_batch, a base_url that is not loopback) and has no annotation table under
results/ yet, and, offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE), a Hugging Face model that
is not on disk or in the cache. Whether each single request is cached would need every prompt
rendered (items, k-NN demonstrations, embeddings) at plan time; an existing annotation table is
the cheap, exact stand-in for "nothing left to ask".
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from llmal.config import config_problems
from llmal.config.grid import FEATURE_ENCODERS, al_settings
from llmal.config.schema import ConfigError, _best_error, _key_path, apply_schema
from llmal.config.seeds import seed_warnings
from llmal.hub import PACKAGED_MODELS, resolve_model
from llmal.llm.executors import LLM_KINDS
from llmal.llm.executors.openai_common import api_key_env, is_loopback_url
from llmal.tasks.registry import capabilities_of, task_of

CHECK_VERSION = 2  # bump when the cached data summary changes meaning
REMOTE_KINDS = ("openai", "openai_batch")
SELF_HOSTED_KINDS = ("vllm", "local")


@dataclass(frozen=True)
class Problem:
    level: str    # "error" | "warning"
    where: str    # the config file, or the data file
    message: str  # starts with the key (or the column/line) at fault

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == "error"]


def check_config_file(path: str | Path, *, results: str | Path = "results") -> list[Problem]:
    path = Path(path)
    where = str(path)
    if not path.is_file():
        return [Problem("error", where, "config file not found")]
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        return [Problem("error", where, f"not valid YAML: {e}")]
    if not isinstance(config, dict):
        return [Problem("error", where, "the config must be a mapping of keys")]
    return check_config(config, where, results=results)


def check_config(config: dict[str, Any], where: str = "config", *,
                 results: str | Path = "results", data: bool = True, dry_run: bool = True,
                 in_place: bool = False) -> list[Problem]:
    """All problems of a raw (not yet validated) config: the one check of `llmal check`,
    `llmal plan` and the Snakefile (`plan_check`).

    `dry_run`: nothing will be sent or loaded yet (`llmal check`, `llmal plan`, `snakemake -n`),
    so what this machine lacks (an API key, a model in the Hugging Face cache) is a warning; in a
    real run it is an error. `in_place`: fill the schema's defaults into `config` itself (the
    Snakefile plans with them); otherwise `config` is not changed."""
    if not in_place:
        config = copy.deepcopy(config)
    problems = [Problem("error", where, m) for m in yaml_type_hints(config)]
    schema_errors, explicit = apply_schema(config)
    if schema_errors:
        problems += [Problem("error", where, m) for m in schema_messages(schema_errors)
                     if not any(m.split(":")[0] == p.message.split(":")[0] for p in problems)]
        return problems
    problems += [Problem("error", where, f"{k}: {m}") for k, m in config_problems(config, explicit)]
    settings = settings_problems(config)
    problems += [Problem("error", where, m) for m in settings]
    problems += [Problem("error", where, m) for m in model_problems(config)]
    problems += [Problem("warning", where, m) for m in seed_warnings(config)]
    machine = "warning" if dry_run else "error"
    problems += [Problem(machine, where, m) for m in machine_problems(config, Path(results))]
    if data and not any(m.startswith("split.") for m in settings):  # no split: nothing to count
        summary = dataset_summary(config)
        data_where = summary.get("where") or where
        problems += [Problem("error", data_where, m) for m in summary.get("errors", [])]
        problems += [Problem("warning", data_where, m) for m in summary.get("warnings", [])]
        problems += [Problem("error", where, m) for m in data_config_problems(config, summary)]
        problems += [Problem("warning", where, m) for m in class_warnings(config, summary)]
    return problems


# --------------------------------------------------------------------------------------------
# config alone


def _yaml_scalar_hint(value: Any) -> str | None:
    if isinstance(value, bool):
        spelled = "yes/no/on/off/true/false"
        return (f"YAML read this as the boolean {value} (unquoted {spelled} are booleans); "
                f"quote it, e.g. '{'YES' if value else 'NO'}'")
    if isinstance(value, (int, float)):
        return f"YAML read this as the number {value!r}; quote it, e.g. '{value}'"
    return None


def yaml_type_hints(config: Mapping[str, Any]) -> list[str]:
    """Label names and label_map values that YAML turned into booleans or numbers."""
    out = []
    labels = config.get("labels") if isinstance(config.get("labels"), Mapping) else {}
    for i, name in enumerate(labels.get("names") or []):
        hint = _yaml_scalar_hint(name)
        if hint:
            out.append(f"labels.names.{i}: {name!r} is not a string: {hint}")
    hint = _yaml_scalar_hint(labels.get("positive")) if "positive" in labels else None
    if hint:
        out.append(f"labels.positive: {labels['positive']!r} is not a string: {hint}")
    dataset = config.get("dataset") if isinstance(config.get("dataset"), Mapping) else {}
    label_map = dataset.get("label_map")
    for raw, target in (label_map.items() if isinstance(label_map, Mapping) else []):
        hint = _yaml_scalar_hint(target)
        if hint:
            out.append(f"dataset.label_map.{raw}: the value {target!r} is not a label name: {hint}")
    return out


def schema_messages(schema_errors: list[Any]) -> list[str]:
    """One message per key at fault (the deepest error of each), in key order."""
    by_key: dict[str, list[Any]] = {}
    for e in schema_errors:
        by_key.setdefault(_key_path(e), []).append(e)
    out = []
    for key in sorted(by_key):
        err = _best_error(by_key[key])
        hint = _yaml_scalar_hint(err.instance) if "is not of type 'string'" in err.message else None
        out.append(f"{key}: {err.message}" + (f" ({hint})" if hint else ""))
    # a parent key whose children have their own messages adds nothing
    return [m for m in out if not any(o != m and o.startswith(m.split(":")[0] + ".") for o in out)]


def metric_names(config: Mapping[str, Any]) -> list[str]:
    """The columns of rounds.csv (and the summary) that aggregate.metric may name."""
    from llmal.results.runs import (  # pandas: planning stays light
        PER_LABEL_METRICS,  # pandas: planning stays light
        ROUND_COLUMNS,
    )
    names = [c for c in ROUND_COLUMNS if c != "round"]
    names += [f"{m}_{n}" for n in config["labels"]["names"] for m in PER_LABEL_METRICS]
    if config["labels"].get("positive"):
        names += [f"{m}_pos" for m in PER_LABEL_METRICS]
    names += list(capabilities_of(config).metrics)
    return names


def settings_problems(config: Mapping[str, Any]) -> list[str]:
    out = []
    metric = (config.get("aggregate") or {}).get("metric", "f1_macro")
    known = metric_names(config)
    if metric not in known:
        out.append(f"aggregate.metric: {metric!r} is not a metric of the runs (known: {known})")
    split = config.get("split") or {}
    test, dev = float(split.get("test", 0.2)), float(split.get("dev", 0.1))
    if test + dev >= 1.0:
        out.append(f"split.test + split.dev: {test} + {dev} = {test + dev:g} leaves no pool; the "
                   "two must sum to less than 1")
    for name, enc in config["encoders"].items():
        lo, hi = (enc.get("ngram_range") or [1, 2])[:2]
        if enc["kind"] == "tfidf" and lo > hi:
            out.append(f"encoders.{name}.ngram_range: [{lo}, {hi}] is not a range; the smaller "
                       f"n-gram size comes first ([{hi}, {lo}])")
    for name, spec in config["annotators"].items():
        demos = spec.get("demonstrations") or {}
        if demos and int(demos["k"]) > int(demos.get("pool_size", 32)):
            out.append(f"annotators.{name}.demonstrations.k: {demos['k']} demonstrations per prompt "
                       f"but the gold pool has only pool_size {demos.get('pool_size', 32)}")
        if spec["kind"] in REMOTE_KINDS and spec["model"] not in (config.get("prices") or {}):
            out.append(f"prices.{spec['model']}: no price for the model of annotators.{name} "
                       f"({spec['kind']}); add prices: {{{spec['model']}: {{input: ..., output: ...}}}} "
                       "in dollars per 1M tokens")
    wanted = expected_classes(config["dataset"])
    if wanted is not None and len(config["labels"]["names"]) != wanted:
        out.append(f"labels.names: dataset kind {config['dataset']['kind']!r} has {wanted} classes, "
                   f"but {len(config['labels']['names'])} label names are given")
    return out


# the demo dataset's variants with a known number of classes (None: its `classes`); the ner
# variant's labels are entity types, checked by the task's own reader
DEMO_CLASSES: dict[str, int | None] = {"hostility": None, "relation": 4}


def expected_classes(ds: Mapping[str, Any]) -> int | None:
    if ds["kind"] == "gahd":
        return 2
    if ds["kind"] == "demo" and ds.get("task", "hostility") in DEMO_CLASSES:
        return DEMO_CLASSES[ds.get("task", "hostility")] or int(ds.get("classes", 2))
    return None


def model_problems(config: Mapping[str, Any]) -> list[str]:
    """A `local` annotator's model must be a GGUF file or a packaged alias (llmal.hub)."""
    out = []
    for name, spec in config["annotators"].items():
        if spec["kind"] != "local":
            continue
        try:
            path = Path(resolve_model(str(spec["model"])))
        except FileNotFoundError as e:   # a packaged alias whose package is missing
            out.append(f"annotators.{name}.model: {e}")
            continue
        if not path.is_file():
            out.append(f"annotators.{name}.model: {spec['model']!r} is neither a GGUF file nor a "
                       f"packaged alias (aliases: {sorted(PACKAGED_MODELS)})")
    return out


def machine_problems(config: Mapping[str, Any], results: Path) -> list[str]:
    """What this machine lacks for the jobs that would send or load something: an API key, a
    Hugging Face model offline. A warning in a dry run, an error in a real one (check_config)."""
    return api_key_problems(config, results) + hub_model_problems(config)


def api_key_problems(config: Mapping[str, Any], results: Path) -> list[str]:
    """A remote LLM annotator with requests left to send needs its API-key variable."""
    out = []
    dataset = config["dataset"]["name"]
    for name, spec in config["annotators"].items():
        if spec["kind"] not in REMOTE_KINDS or is_loopback_url(spec.get("base_url")):
            continue
        env = api_key_env(spec)
        if os.environ.get(env, "").strip():
            continue
        if (results / dataset / "annotations" / f"{name}.parquet").is_file():
            continue  # annotated already: nothing left to send
        out.append(f"annotators.{name}.api_key_env: the environment variable {env} is not set or "
                   f"empty, and annotator {name} has requests to send to "
                   f"{spec.get('base_url') or 'the OpenAI API'} (export {env}=..., or name another "
                   "variable with api_key_env); a dry run plans without it, a run stops here")
    return out


def hub_models(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, model) of every model loaded with from_pretrained or vLLM: transformer and
    sentence-transformer encoders, vllm annotators."""
    found = [(f"encoders.{n}.model", str(e["model"])) for n, e in config["encoders"].items()
             if e["kind"] in ("transformer", "sentence_transformer") and e.get("model")]
    found += [(f"annotators.{n}.model", str(a["model"])) for n, a in config["annotators"].items()
              if a["kind"] == "vllm"]
    return found


def hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_model_available(model: str) -> bool:
    """A local path, a packaged alias, or a repository in the Hugging Face cache (no network)."""
    try:
        if Path(resolve_model(model)).exists():
            return True
    except FileNotFoundError:
        return False
    from huggingface_hub import try_to_load_from_cache
    # sentence-transformers resolves a bare name under its own organisation
    for repo in ([model] if "/" in model else [model, f"sentence-transformers/{model}"]):
        try:
            if isinstance(try_to_load_from_cache(repo, "config.json"), str):
                return True
        except Exception:  # an id the hub refuses (HFValidationError): not in any cache
            continue
    return False


def hub_model_problems(config: Mapping[str, Any]) -> list[str]:
    """Offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE), a model neither on disk nor in the
    Hugging Face cache cannot be loaded. Online it may be downloaded: nothing to say without
    asking the network."""
    if not hub_offline():
        return []
    return [f"{key}: {model!r} is neither a local path, a packaged alias nor in the Hugging Face "
            "cache, and HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE forbid downloading it (download it "
            f"first, e.g. `huggingface-cli download {model}`, or give a local path)"
            for key, model in hub_models(config) if not hub_model_available(model)]


# --------------------------------------------------------------------------------------------
# config against the data


def data_config_problems(config: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    out = []
    topics = summary.get("topics")
    if topics is not None:
        for name, spec in config["annotators"].items():
            for label, per_topic in (spec.get("topic_error") or {}).items():
                for topic in per_topic:
                    if topic not in topics:
                        shown = sorted(topics)[:20]
                        out.append(f"annotators.{name}.topic_error.{label}.{topic}: the dataset has "
                                   f"no topic {topic!r} (topics: {shown}"
                                   f"{' ...' if len(topics) > 20 else ''})")
    out += source_problems(config, summary)
    pool = (summary.get("split_counts") or {}).get("pool")
    if pool is not None:
        for cname, cond in config["conditions"].items():
            if cond["sampler"] == "full":
                continue
            initial = int(al_settings(dict(config), cname).get("initial", 50))
            if initial > pool:
                key = (f"conditions.{cname}.al.initial" if "initial" in (cond.get("al") or {})
                       else "al.initial")
                out.append(f"{key}: {initial} initial labels for condition {cname}, but the pool "
                           f"has only {pool} items")
    return out


def source_problems(config: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    """The columns human and precomputed annotators read, found as their jobs will find them:
    a human `column` among the items' annotator columns; a precomputed file read by its own
    reader (llmal.tasks.classification.precomputed.source_table), or its columns among the items'."""
    import pandas as pd

    from llmal.tasks.classification.human import column_labels  # pandas: planning stays light
    item_columns = summary.get("item_columns")
    items = pd.DataFrame(columns=item_columns or ["id"])
    out = []
    for name, spec in config["annotators"].items():
        if spec["kind"] == "human" and spec.get("column") and item_columns is not None:
            try:
                column_labels(items, str(spec["column"]))
            except ValueError as e:
                out.append(f"annotators.{name}.column: {e}")
        elif spec["kind"] == "precomputed" and (spec.get("file") or item_columns is not None):
            out += precomputed_summary(config, name, spec, items)["errors"]
    return out


META_HINT = ("; a column of the dataset file reaches the items table only when dataset.columns.meta "
             "lists it: add it there")
FILE_HINT = ("; name the file's own columns in the annotator's columns (and select) keys, or, for a "
             "file without a header line, set its header: false and give columns by number")


def precomputed_summary(config: Mapping[str, Any], name: str, spec: Mapping[str, Any],
                        items: Any) -> dict[str, Any]:
    """{errors}: the annotator's source read as its annotate job reads it (a file is read once
    per content and spec, then cached like the dataset summary)."""
    from llmal.tasks.classification.precomputed import (  # pandas: planning stays light
        PrecomputedError,  # pandas: planning stays light
        source_table,
    )

    def read() -> dict[str, Any]:
        where = f"annotators.{name}"
        try:
            source_table(spec, items, where)
        except (PrecomputedError, ConfigError, ValueError) as e:
            columns = str(e).startswith((f"{where}.columns", f"{where}.select"))
            hint = (FILE_HINT if spec.get("file") else META_HINT) if columns else ""
            return {"errors": [str(e) + hint]}
        return {"errors": []}

    if not spec.get("file"):
        return read()
    if not Path(str(spec["file"])).is_file():
        return {"errors": []}   # reference_problems names the missing file
    return cached(config, [str(spec["file"])], {"annotator": spec}, read)


def demo_summary(config: Mapping[str, Any]) -> dict[str, Any]:
    """Size, split and topics of the demo data, from the config alone (nothing is generated)."""
    from llmal.tasks.classification.demo import TOPICS  # numpy, pandas: planning stays light
    from llmal.tasks.classification.relations import NO_RELATION_PAIRS  # numpy, pandas
    ds = config["dataset"]
    n = int(ds.get("n_items", 3000))
    split = config.get("split") or {}
    test = int(n * float(split.get("test", 0.2)) + 0.5)
    dev = int(n * float(split.get("dev", 0.1)) + 0.5)
    return {"where": "demo dataset (synthetic)", "errors": [], "warnings": [], "n_items": n,
            "split_counts": {"pool": n - test - dev, "dev": dev, "test": test},
            "topics": list(NO_RELATION_PAIRS if ds.get("task") == "relation" else TOPICS)}


def dataset_summary(config: Mapping[str, Any]) -> dict[str, Any]:
    """The data checks' result: errors, warnings, n_items, split_counts, topics (cached)."""
    ds = config["dataset"]
    caps = capabilities_of(config)
    if ds["kind"] in caps.downloaded and not ds.get("path"):
        return {}  # downloaded by the prepare rule; checked there
    if caps.checks_data_by_prepare:
        return prepared_summary(config)
    if ds["kind"] == "demo":
        return demo_summary(config)
    files = _dataset_paths(ds)
    missing = [p for p in files if not Path(p).is_file()]
    if missing:
        key = "dataset.path" if ds.get("path") else "dataset.files"
        return {"errors": [f"{key}: file {p} not found" for p in missing]}
    settings = {k: config.get(k) for k in ("dataset", "labels", "split")}
    return cached(config, files, settings, lambda: _read_and_summarise(config))


def cached(config: Mapping[str, Any], files: list[str], settings: Mapping[str, Any],
           compute: Any) -> dict[str, Any]:
    """compute(), kept under <cache_dir>/check/ by the files' sha256 and the settings."""
    key = _cache_key(files, settings)
    cache = Path(config.get("cache_dir") or ".llmal-cache") / "check" / f"{key}.json"
    if cache.is_file():
        try:
            return json.loads(cache.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    summary = compute()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(summary))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only cache only costs speed
    return summary


def prepared_summary(config: Mapping[str, Any]) -> dict[str, Any]:
    """A task that checks its data by its own prepare: the items read and split as the prepare
    rule will (files named at fault); split counts only."""
    from llmal.datasets.validate import DatasetError  # pandas: planning stays light

    ds = config["dataset"]
    try:
        items, split = task_of(config).prepare(ds, config["labels"], config.get("split") or {},
                                               cache_dir=Path(config.get("cache_dir") or ".llmal-cache") / "datasets")
    except DatasetError as e:
        return {"where": "dataset", "errors": [str(e)], "warnings": []}
    counts = split["split"].value_counts()
    return {"where": "dataset", "errors": [], "warnings": [], "n_items": int(len(items)),
            "split_counts": {s: int(counts.get(s, 0)) for s in ("pool", "dev", "test")}}


def _dataset_paths(ds: Mapping[str, Any]) -> list[str]:
    if ds.get("path"):
        return [str(ds["path"])]
    return [str(f.get("path")) for f in ds.get("files") or [] if isinstance(f, Mapping)]


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"{h.hexdigest()}:{os.path.getsize(path)}"


def _cache_key(files: list[str], settings: Mapping[str, Any]) -> str:
    payload = json.dumps({"v": CHECK_VERSION, "files": [_file_digest(p) for p in files],
                          "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _read_and_summarise(config: Mapping[str, Any]) -> dict[str, Any]:
    from llmal.datasets.validate import DatasetError  # pandas: planning stays light
    from llmal.tasks.classification.prepare import (  # pandas
        dataset_warnings,  # pandas: planning stays light
        load_and_split,
    )

    ds = config["dataset"]
    where = ", ".join(_dataset_paths(ds))
    try:
        items, split, where = load_and_split(ds, config["labels"], config.get("split") or {},
                                             cache_dir=Path(config.get("cache_dir") or ".llmal-cache") / "datasets")
    except (DatasetError, ConfigError) as e:
        return {"where": where, "errors": [_strip_where(str(e), where)], "warnings": []}
    names = [str(n) for n in config["labels"]["names"]]
    counts = split["split"].value_counts()
    has_topic = bool((items["topic"].astype(str) != "").any())
    in_pool = pool_classes(items, split, names)
    return {
        "where": where, "errors": [],
        "warnings": [_strip_where(w, where) for w in dataset_warnings(items, split, names, where)]
        + one_class_pool(in_pool["gold"]),
        "n_items": int(len(items)),
        "split_counts": {s: int(counts.get(s, 0)) for s in ("pool", "dev", "test")},
        "topics": sorted(set(items["topic"].astype(str)) - {""}) if has_topic else [],
        "class_counts": {n: int((items["gold"] == k).sum()) for k, n in enumerate(names)},
        "item_columns": [str(c) for c in items.columns],
        "pool_classes": in_pool,
    }


def pool_classes(items: Any, split: Any, names: list[str]) -> dict[str, dict[str, int]]:
    """Label counts over the pool items: of gold, and of each annotator column (ann_*)."""
    from llmal.contracts import annotator_columns  # pandas: planning stays light
    pool = items["id"].astype(str).isin(split.loc[split["split"] == "pool", "id"].astype(str))
    out = {}
    for col in ["gold", *annotator_columns(items)]:
        values = items.loc[pool, col].dropna().astype(int).value_counts()
        out[col] = {names[k]: int(n) for k, n in sorted(values.items()) if 0 <= k < len(names)}
    return out


def one_class_pool(counts: Mapping[str, int]) -> list[str]:
    if len(counts) >= 2:
        return []
    return [f"the pool holds gold labels of {len(counts)} class(es) ({dict(counts)}): every AL "
            "run on it stops in round 0 with stop_reason no_two_classes, after buying its initial "
            "labels (check dataset.columns.split, split.use_column and the split shares)"]


def class_warnings(config: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    """A condition that cannot buy labels of two classes never gets a model to train: its
    schedule or budget_labels buys fewer than two labels, or its human annotator (one dataset
    column) labels the pool with one class only. Warn before its runs pay for labels."""
    from llmal.engine.schedule import Schedule  # numpy: planning stays light
    from llmal.tasks.classification.human import annotator_column  # pandas, numpy: planning stays light
    pool = (summary.get("split_counts") or {}).get("pool")
    out = []
    for cname, cond in config["conditions"].items():
        cap = Schedule.from_settings(al_settings(dict(config), cname), full=cond["sampler"] == "full"
                                     ).label_cap(pool if pool is not None else 2)
        if cap < 2:
            out.append(f"conditions.{cname}: its runs can buy {cap} training label(s) (al.initial + "
                       "al.rounds x al.batch, or al.budget_labels), never two classes: every run "
                       "stops in round 0 with stop_reason no_two_classes")
    counts = summary.get("pool_classes")
    if not counts or len(counts.get("gold", {})) < 2:
        return out   # the pool's own warning says it
    for cname, cond in config["conditions"].items():
        spec = config["annotators"].get(cond["annotator"]) or {}
        got = counts.get(annotator_column(str(spec.get("column")))) if spec.get("kind") == "human" else None
        if spec.get("column") and got is not None and len(got) < 2:
            out.append(f"conditions.{cname}.annotator: {cond['annotator']} (dataset column "
                       f"{spec['column']}) gives labels of {len(got)} class(es) on the pool ({got}): "
                       f"every run of {cname} stops in round 0 with stop_reason no_two_classes, "
                       "after buying its initial labels")
    return out


def _strip_where(message: str, where: str) -> str:
    return message[len(where) + 2:] if message.startswith(where + ": ") else message


# --------------------------------------------------------------------------------------------
# output


def format_problems(problems: list[Problem]) -> str:
    n_err, n_warn = len(errors(problems)), len(problems) - len(errors(problems))
    lines = [str(p) for p in sorted(problems, key=lambda p: p.level != "error")]
    lines.append(f"{n_err} error(s), {n_warn} warning(s)")
    return "\n".join(lines)


def plan_check(config: dict[str, Any], where: str, *, dry_run: bool = False) -> list[Problem]:
    """What the Snakefile runs while planning: check_config with the defaults filled into
    `config`; raise ConfigError listing every error, return the warnings (printed by the caller)."""
    problems = check_config(config, where, dry_run=dry_run, in_place=True)
    bad = errors(problems)
    if bad:   # the warnings too: the same list as `llmal check`
        listed = sorted(problems, key=lambda p: p.level != "error")
        raise ConfigError(f"{len(bad)} problem(s) in {where} (run `llmal check --configfile "
                          f"{where}` for the same list):\n" + "\n".join(f"  {p}" for p in listed))
    return [p for p in problems if p.level == "warning"]


__all__ = ["Problem", "check_config", "check_config_file", "format_problems", "plan_check",
           "FEATURE_ENCODERS", "LLM_KINDS", "SELF_HOSTED_KINDS"]
