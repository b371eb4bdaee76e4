"""The real SmolLM2-135M GGUF through llama-cpp-python on a few German comments."""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pandas as pd
import pytest

if importlib.util.find_spec("llama_cpp") is None:  # not imported here: see import_llama()
    pytest.skip("llama-cpp-python is not installed", allow_module_level=True)

from llmal.hub import PACKAGED_MODELS, packaged_path  # noqa: E402
from llmal.llm.executors.local import LocalGGUFExecutor  # noqa: E402
from llmal.llm.prompts import load_prompt  # noqa: E402
from llmal.tasks.classification.llm import annotate_with_llm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
LABELS = ["not_hostile", "hostile"]

try:
    packaged_path(*PACKAGED_MODELS["smollm2-135m-instruct-gguf"])
except FileNotFoundError as e:  # pragma: no cover - the package is in requirements.txt
    pytest.skip(str(e), allow_module_level=True)

TEXTS = [
    "Die Flüchtlinge sollen alle zurück, die bringen nur Kriminalität.",
    "Heute war das Wetter in Hamburg wirklich schön.",
    "Wir brauchen mehr Pflegekräfte aus dem Ausland, sonst bricht das System zusammen.",
    "Grenzen dicht, sofort! Keiner mehr rein.",
    "Die Bahn ist schon wieder zu spät, unfassbar.",
    "Integration klappt am besten mit guten Sprachkursen.",
    "Diese Asylanten sind doch alle Schmarotzer.",
    "Der Bundestag debattiert morgen über die Rentenreform.",
    "Migranten haben unsere Stadt bereichert, finde ich.",
    "Abschieben, alle, und zwar heute noch.",
]
SPEC = {"kind": "local", "model": "smollm2-135m-instruct-gguf", "prompt": "two_question",
        "temperature": 0, "max_tokens": 32, "seed": 0, "n_ctx": 1024, "n_threads": 2}


def test_smollm2_annotates_strictly_and_second_run_hits_the_cache(tmp_path):
    items = pd.DataFrame({"id": [f"c{n}" for n in range(len(TEXTS))], "text": TEXTS})
    kwargs = dict(spec=SPEC, label_names=LABELS, positive="hostile", prompts_dir=PROMPTS,
                  prices={}, cache_path=tmp_path / "cache.sqlite", state_dir=tmp_path / "state",
                  name="smollm", log=print)
    t0 = time.perf_counter()
    first = annotate_with_llm(items, **kwargs)  # the executor comes from the spec's kind
    seconds = time.perf_counter() - t0
    print(f"SmolLM2 two_question: {seconds / len(items):.2f} s/item, "
          f"{first['status'].value_counts().to_dict()}")

    assert set(first["status"]) <= {"ok", "invalid"}  # a local model never fails a request
    ok = first[first["status"] == "ok"]
    assert len(ok) >= 8  # the grammar constrains the answer; only truncation could break it
    template = load_prompt("two_question", PROMPTS)
    for row in ok.itertuples():
        answers = json.loads(row.answers)
        assert set(answers) == {"migration", "hostile"}
        assert set(answers.values()) <= {"yes", "no"}
        assert row.label == template.label_of(answers, LABELS, "hostile")
    assert first.loc[first["status"] != "ok", "label"].isna().all()
    assert (first["input_tokens"] > 100).all() and (first["output_tokens"] > 0).all()
    assert (first["cost_usd"] == 0).all() and set(first["model"]) == {SPEC["model"]}

    again = LocalGGUFExecutor(SPEC)
    second = annotate_with_llm(items, **kwargs, executor=again)
    assert again.calls == 0 and again._llm is None  # nothing sent, model never even loaded
    pd.testing.assert_frame_equal(first, second)


def test_smollm2_tags_entities_through_the_ner_prompt(tmp_path):
    """task ner through the local executor (real GGUF, the schema's grammar): every sentence gets
    a row, answers are parsed strictly (a span not in the sentence is an invalid span, not
    coerced), the raw answer is kept, and a second run is answered from the cache."""
    from llmal.tasks.ner.llm import annotate_ner_with_llm
    from llmal.tasks.ner.spans import spans_of_json

    sentences = [["Anna", "Schmidt", "visited", "Berlin", "in", "May", "."],
                 ["The", "Red", "Cross", "thanked", "Kofi", "Mensah", "."],
                 ["Officials", "met", "in", "Lagos", "yesterday", "."]]
    items = pd.DataFrame({"id": ["s0", "s1", "s2"], "text": [" ".join(s) for s in sentences],
                          "meta_tokens": [json.dumps(s) for s in sentences]})
    spec = {**SPEC, "prompt": "ner", "max_tokens": 96}
    kwargs = dict(spec=spec, types=["PER", "ORG", "LOC", "DATE"], prices={},
                  cache_path=tmp_path / "cache.sqlite", state_dir=tmp_path / "state", name="smollm",
                  log=print)
    first = annotate_ner_with_llm(items, **kwargs)
    assert first["id"].tolist() == ["s0", "s1", "s2"] and set(first["status"]) <= {"ok", "invalid"}
    assert (first["raw"].str.len() > 0).all()
    for row, tokens in zip(first.itertuples(), sentences):
        if row.status == "ok":
            for start, end, typ in spans_of_json(row.spans):   # every kept span is in the sentence
                assert 0 <= start < end <= len(tokens) and typ in {"PER", "ORG", "LOC", "DATE"}
    again = annotate_ner_with_llm(items, **kwargs)
    pd.testing.assert_frame_equal(first[["id", "status", "spans", "raw"]], again[["id", "status", "spans", "raw"]])
    assert again.attrs["llm"]["cached"] == first.attrs["llm"]["requests"]
