"""`llmal init`: a first config for a data file, from what the file shows.

`guess_columns` reads the file as the dataset stage would (llmal.datasets.loaders.load_table)
and guesses which columns hold the id, the text, the gold label, human annotators' labels, a
recorded LLM's answers, the topic and the split. `starter_config` turns the guesses into a
complete, commented config text: the human reference, a simulated (or the recorded) LLM
annotator, random against entropy sampling, TF-IDF features, three seeds and an AL schedule the
pool affords; with `llm=(backend, model)` also a real LLM annotator with a two-question prompt
template to fill in. Label names YAML would misread (YES, NO, on, 1, ...) are quoted.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml

from llmal.datasets.loaders import load_table

ID_NAME = re.compile(r"(^|[^a-z])(id|uid|uuid|key)$|^id[^a-z]|^(item|doc|comment|post|tweet|row)_?(id|no|nr|num)", re.I)
GOLD_NAME = re.compile(r"gold|label|class|target|truth|^y$|verdict|category_true|adjudicat", re.I)
LLM_NAME = re.compile(r"llm|gpt|claude|llama|qwen|mistral|gemini|model|pred|machine|auto", re.I)
TOPIC_NAME = re.compile(r"topic|theme|subject|domain|category|group", re.I)
SPLIT_NAME = re.compile(r"^(split|partition|fold|set|subset)$", re.I)
SPLIT_VALUES = {"train", "training", "dev", "validation", "valid", "val", "test", "testing", "eval", "pool"}
MAX_CLASSES = 20
POSITIVE_NAME = re.compile(r"^(yes|true|1|pos|positive|hostile|toxic|hate|offensive|spam|relevant|y)$", re.I)

# LLM prices in dollars per million tokens that `--llm` fills in for a few well-known models
# (check them against your provider's price list; any other model gets zeros to fill in)
KNOWN_PRICES = {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60},
                "gpt-4o": {"input": 2.50, "cached_input": 1.25, "output": 10.00},
                "gpt-4.1-mini": {"input": 0.40, "cached_input": 0.10, "output": 1.60}}


@dataclass
class Guess:
    """Which column holds what (None: not found), and the label values of the gold column."""
    path: Path
    n_rows: int
    columns: list[str]
    id: str | None = None
    text: str | None = None
    gold: str | None = None
    annotators: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)     # recorded LLM answers
    topic: str | None = None
    split: str | None = None
    labels: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What was guessed, for the terminal."""
        def show(v: Any) -> str:
            return (", ".join(v) if isinstance(v, list) else v) or "(none)"
        rows = [("id", show(self.id) if self.id else "(none: ids are row numbers, 1-based)"),
                ("text", show(self.text)), ("gold", show(self.gold)),
                ("human annotators", show(self.annotators)), ("recorded LLM answers", show(self.recorded)),
                ("topic", show(self.topic)), ("split", show(self.split)),
                ("labels", ", ".join(yaml_scalar(x) for x in self.labels) or "(none)")]
        return [f"  {k:<21} {v}" for k, v in rows]


class InitError(ValueError):
    """The file cannot be turned into a config; the message says what to pass instead."""


def _label_values(values: pd.Series) -> list[str]:
    vals = values.dropna()
    keys = []
    for v in vals.unique():
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        s = str(v).strip()
        if s and s not in keys:
            keys.append(s)
    return sorted(keys, key=lambda s: (not s.lstrip("-").isdigit(), int(s) if s.lstrip("-").isdigit() else 0, s))


def _categorical(df: pd.DataFrame, col: str) -> bool:
    vals = df[col].dropna()
    n = vals.nunique()
    return 2 <= n <= MAX_CLASSES and n <= max(2, len(vals) // 5)


def _mean_length(values: pd.Series) -> float:
    vals = values.dropna().astype(str)
    return float(vals.str.len().mean()) if len(vals) else 0.0


def guess_columns(path: str | Path, *, id: str | None = None, text: str | None = None,
                  gold: str | None = None, annotators: Sequence[str] | None = None,
                  topic: str | None = None) -> Guess:
    """Read `path` and guess its columns; the keyword arguments override single guesses."""
    path = Path(path)
    df = load_table(path)
    cols = [str(c) for c in df.columns]
    df.columns = cols
    for name, given in (("--id", id), ("--text", text), ("--gold", gold), ("--topic", topic),
                        *(("--annotators", a) for a in (annotators or []))):
        if given is not None and given not in cols:
            raise InitError(f"{name} {given}: {path} has no such column (columns: {', '.join(cols)})")
    g = Guess(path=path, n_rows=len(df), columns=cols)
    taken: set[str] = set()

    g.split = next((c for c in cols if SPLIT_NAME.search(c) and
                    set(df[c].dropna().astype(str).str.lower()) <= SPLIT_VALUES), None)
    taken |= {g.split} if g.split else set()
    if id is not None:
        g.id = id
    else:
        unique = [c for c in cols if c not in taken and df[c].notna().all() and df[c].is_unique]
        named = [c for c in unique if ID_NAME.search(c)]
        g.id = named[0] if named else None
    taken |= {g.id} if g.id else set()
    strings = [c for c in cols if c not in taken and df[c].dtype == object]
    g.text = text or (max(strings, key=lambda c: _mean_length(df[c])) if strings else None)
    if g.text is None:
        raise InitError(f"{path}: no column holds text (columns: {', '.join(cols)}); pass --text COLUMN")
    taken.add(g.text)
    cats = [c for c in cols if c not in taken and _categorical(df, c)]
    if gold is not None:
        g.gold = gold
    else:
        named = [c for c in cats if GOLD_NAME.search(c) and not LLM_NAME.search(c)]
        g.gold = named[0] if named else next((c for c in cats if not TOPIC_NAME.search(c)), None)
    if g.gold is None:
        raise InitError(f"{path}: no column looks like gold labels (2 to {MAX_CLASSES} distinct "
                        f"values; columns: {', '.join(cols)}); pass --gold COLUMN")
    taken.add(g.gold)
    g.labels = _label_values(df[g.gold])
    if len(g.labels) < 2:
        raise InitError(f"{path}: the gold column {g.gold!r} holds {len(g.labels)} label(s); "
                        "a study needs two or more classes")
    label_set = set(g.labels)
    rest = [c for c in cats if c not in taken]
    same_labels = [c for c in rest if set(_label_values(df[c])) <= label_set]
    if annotators is not None:
        g.annotators = list(annotators)
    else:
        g.annotators = [c for c in same_labels if not LLM_NAME.search(c)]
    g.recorded = [c for c in same_labels if c not in g.annotators and LLM_NAME.search(c)]
    taken |= set(g.annotators) | set(g.recorded)
    if topic is not None:
        g.topic = topic
    else:
        others = [c for c in rest if c not in taken and df[c].dtype == object]
        named = [c for c in others if TOPIC_NAME.search(c)]
        g.topic = (named or others or [None])[0]
    return g


def yaml_scalar(value: str) -> str:
    """`value` as a YAML scalar that reads back as this very string (quoted where needed)."""
    try:
        plain_ok = yaml.safe_load(value) == value and re.fullmatch(r"[A-Za-z_][\w\-. ]*", value) is not None
    except yaml.YAMLError:
        plain_ok = False
    return value if plain_ok else "'" + value.replace("'", "''") + "'"


def misread_labels(labels: Sequence[str]) -> list[str]:
    """The label names an unquoted YAML scalar would turn into something else (YES, NO, on, 1)."""
    out = []
    for name in labels:
        try:
            if yaml.safe_load(name) != name:
                out.append(name)
        except yaml.YAMLError:
            out.append(name)
    return out


def _rater(column: str) -> str:
    """The annotator name of one human annotator's column (never `human` or `llm`)."""
    name = _name(column)
    return name if name not in ("human", "llm", "llm_real") else "rater_" + name


def _name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-") or "mydata"
    return name if name[0].isalnum() else "d" + name


@dataclass(frozen=True)
class Schedule:
    initial: int
    batch: int
    rounds: int
    pool: int

    @property
    def labels(self) -> int:
        return self.initial + self.batch * self.rounds


def affordable_schedule(n_items: int, *, test: float = 0.2, dev: float = 0.1) -> Schedule:
    """An AL schedule for a pool of this size: at most half the pool (and 1,000 labels) bought,
    in an initial set and about six equal rounds, so that AL against random shows a curve."""
    pool = int(n_items - math.floor(n_items * test + 0.5) - math.floor(n_items * dev + 0.5))
    budget = max(4, min(pool // 2, 1000))
    step = max(2, budget // 7)
    if step >= 10:
        step = step // 10 * 10
    rounds = max(1, (budget - step) // step)
    return Schedule(initial=step, batch=step, rounds=rounds, pool=pool)


def _positive(labels: Sequence[str]) -> str | None:
    if len(labels) != 2:
        return None
    named = [x for x in labels if POSITIVE_NAME.match(x)]
    return named[0] if len(named) == 1 else labels[1]


def _flow(mapping: dict[str, Any]) -> str:
    parts = []
    for k, v in mapping.items():
        if isinstance(v, list):
            v = "[" + ", ".join(yaml_scalar(str(x)) for x in v) + "]"
        elif isinstance(v, str):
            v = yaml_scalar(v)
        parts.append(f"{yaml_scalar(k)}: {v}")
    return "{" + ", ".join(parts) + "}"


def starter_config(guess: Guess, *, config_path: str | Path, llm: tuple[str, str] | None = None,
                   prompt_path: str | Path | None = None) -> str:
    """The config text for `guess` (see the module doc)."""
    labels = guess.labels
    positive = _positive(labels)
    schedule = affordable_schedule(guess.n_rows)
    columns: dict[str, Any] = {}
    if guess.id:
        columns["id"] = guess.id
    columns["text"] = guess.text
    columns["gold"] = guess.gold
    if guess.annotators:
        columns["annotators"] = guess.annotators
    if guess.topic:
        columns["topic"] = guess.topic
    if guess.split:
        columns["split"] = guess.split
    if guess.recorded:
        columns["meta"] = guess.recorded
    misread = misread_labels(labels)
    lab = "[" + ", ".join(yaml_scalar(x) for x in labels) + "]"
    errors = {x: (0.15 if x == positive else 0.05) if positive else 0.10 for x in labels}
    out: list[str] = [
        f"# llmal config written by `llmal init {guess.path}` on {date.today().isoformat()}.",
        f"# Check it with `llmal check --configfile {config_path}`, run it with",
        f"# `snakemake --cores 4 --configfile {config_path}`; the report is results/{_name(guess.path.stem)}/report.html.",
        "# Every key: docs/keys.md. Edit freely: the guesses below are only guesses.",
        "",
        "dataset:",
        f"  name: {_name(guess.path.stem)}              # results go to results/<name>/",
        "  kind: file",
        f"  path: {yaml_scalar(str(guess.path))}",
        f"  # guessed from the file's {len(guess.columns)} columns ({', '.join(guess.columns)})",
        f"  columns: {_flow(columns)}",
        "",
        "labels:",
        ("  # quoted: unquoted, YAML would read " + ", ".join(misread) + " as booleans or numbers"
         if misread else "  # the values of the gold column"),
        f"  names: {lab}",
    ]
    if positive:
        out.append(f"  positive: {yaml_scalar(positive)}    # FP/FN and topic errors are counted against this class")
    out += ["", "split:                   # shares of the items; test is human gold and never queried",
            "  test: 0.2", "  dev: 0.1", "  seed: 0", "", "annotators:"]
    if guess.annotators:
        out += ["  # the human reference: the majority of the annotator columns (ties broken by seed);",
                "  # a majority label costs one label per annotator consulted",
                "  human:", "    kind: human", "    mode: majority"]
    else:
        out += ["  # the human reference: the gold labels, as if a person had given them",
                "  human:", "    kind: human", "    mode: gold"]
    out += ["    cost_per_label: 0.10     # dollars you pay per human label: set your own"]
    for col in guess.annotators:
        out += [f"  {_rater(col)}: {{kind: human, column: {yaml_scalar(col)}, cost_per_label: 0.10}}"]
    if guess.recorded:
        col = guess.recorded[0]
        out += [f"  # recorded LLM answers from the column {col!r} (kept with dataset.columns.meta)",
                "  llm:", "    kind: precomputed", f"    columns: {{label: {yaml_scalar(col)}}}",
                "    cost_per_label: 0.0004   # dollars per recorded answer: set what it cost"]
    else:
        out += ["  # a SIMULATED LLM annotator (no API needed): gold labels with class-conditional errors;",
                "  # replace it with a real LLM (llmal init --llm openai:MODEL) or recorded answers",
                "  llm:", "    kind: simulated", "    of: gold", f"    error: {_flow(errors)}",
                "    cost_per_label: 0.0004", "    seed: 7"]
    if llm is not None:
        backend, model = llm
        out += [f"  # a real LLM through {'the OpenAI Batch API' if backend == 'openai_batch' else 'an OpenAI-compatible API'}:",
                f"  # fill in the two questions of {prompt_path} first, then `llmal plan --configfile {config_path}`",
                "  llm_real:", f"    kind: {backend}", f"    model: {yaml_scalar(model)}",
                f"    prompt: {yaml_scalar(str(prompt_path))}",
                "    api_key_env: OPENAI_API_KEY   # the variable holding the key; keys never go in configs"]
    out += ["", "encoders:", "  tfidf: {kind: tfidf, max_features: 20000, ngram_range: [1, 2]}",
            "", "recipes:", "  linear: {kind: logistic, C: 1.0, class_weight: balanced}",
            "",
            f"# {schedule.labels} training labels per run ({schedule.initial} at random, then {schedule.rounds} rounds of "
            f"{schedule.batch}) out of a pool of about {schedule.pool}",
            "al:", f"  initial: {schedule.initial}", f"  batch: {schedule.batch}", f"  rounds: {schedule.rounds}",
            "",
            "# each condition runs once per encoder and seed; the first is the reference of the tests",
            "conditions:",
            "  human_random: {annotator: human, sampler: random}",
            "  human_al:     {annotator: human, sampler: entropy}",
            "  llm_random:   {annotator: llm, sampler: random}",
            "  llm_al:       {annotator: llm, sampler: entropy}"]
    if llm is not None:
        out += ["  llm_real_random: {annotator: llm_real, sampler: random}",
                "  llm_real_al:     {annotator: llm_real, sampler: entropy}"]
    if llm is not None and llm[1] in KNOWN_PRICES:
        price = KNOWN_PRICES[llm[1]]
        out += ["", "prices:                  # dollars per million tokens: check your provider's list",
                f"  {yaml_scalar(llm[1])}: {_flow({**price, 'batch_discount': 0.5})}"]
    elif llm is not None:
        out += ["", "prices:                  # dollars per million tokens: FILL IN from your provider's list",
                f"  {yaml_scalar(llm[1])}: {{input: 0.0, cached_input: 0.0, output: 0.0, batch_discount: 0.5}}"]
    raters = [_rater(c) for c in guess.annotators] + ["llm"]
    out += ["", "# the agreement table compares these with gold and with each other (kappa, cost savings)",
            f"agreement: {{annotators: [{', '.join(raters)}]}}"]
    out += ["", "aggregate:", "  reference: human_random   # every condition is tested against it",
            "  # with three seeds the exact Wilcoxon test cannot go below p = 0.25, so no comparison could be",
            "  # significant; the paired t-test can. After this pilot, `llmal power --configfile THIS` says how",
            "  # many seeds a difference you care about needs (then wilcoxon is an option again)",
            "  primary_test: ttest",
            "", "# three seeds: a pilot that shows the spread",
            "seeds: [0, 1, 2]", ""]
    return "\n".join(out)


def two_question_template(name: str, labels: Sequence[str], positive: str | None) -> str:
    """A prompt template with two questions to fill in (the two-question interface of S0)."""
    pos = positive or labels[-1]
    neg = [x for x in labels if x != pos]
    return "\n".join([
        "# Two-question prompt written by `llmal init --llm`: replace the two questions (TODO) with",
        "# yours. The label is positive only if both answers are yes. Format: config/prompts/two_question.yaml.",
        f"name: {name}                # must equal the file name",
        "description: Q1 and Q2 of my task; positive = yes to both.",
        "system: |-",
        "  You are an expert annotator. You read one text at a time and answer each annotation",
        "  question exactly as instructed. You reply with the requested JSON object only.",
        "",
        "  Questions:",
        "  {questions}",
        "",
        "  Answer with a JSON object of the form {answer_format} and nothing else.",
        "questions:",
        "  - name: q1",
        "    text: >-",
        "      TODO: the first question (e.g. does the text refer to the group or topic of the study?)",
        '    choices: ["yes", "no"]',
        "  - name: q2",
        "    text: >-",
        f"      TODO: the second question (e.g. is it {pos} towards them?)",
        '    choices: ["yes", "no"]',
        "positive_if:",
        '  all: {q1: "yes", q2: "yes"}',
        "demonstration_header: \"Annotated examples:\"",
        "demonstration_format: |-",
        '  Text: """{text}"""',
        "  Label: {label}",
        "demonstration_labels:",
        f"  positive: yes to both questions ({pos})",
        f"  negative: no to either question ({', '.join(neg)})",
        "user_template: |-",
        '  {demonstrations}Text:',
        '  """{text}"""',
        ""])
