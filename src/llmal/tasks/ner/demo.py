"""The SYNTHETIC named-entity demo: English-like sentences with PER, ORG, LOC and DATE spans.

Generated deterministically from a seed, offline, as a test bed for the pipeline (task: ner),
not as research data. Sentences come from templates with slots filled from small name lists;
a few names are ambiguous between types (Jordan is a person or a place, Lincoln a person or an
organisation, March a month or a verb), and capitalised non-entities open many sentences, so a
tagger must use context, not capitals alone.
"""
from __future__ import annotations

import numpy as np

from llmal.tasks.ner.readers import Sentence

NER_DEMO_TYPES = ("PER", "ORG", "LOC", "DATE")

_FIRST = ["Anna", "Peter", "Maria", "Jordan", "Lincoln", "Amara", "Kofi", "Lena", "Tomas",
          "Sara", "Ibrahim", "Mei", "Olga", "Diego", "Noor", "Kenji"]
_LAST = ["Schmidt", "Okafor", "Novak", "Lincoln", "Mensah", "Rossi", "Tanaka", "Haddad",
         "Silva", "Berg", "Kowalski", "Moyo"]
_ORG = [["Acme", "Corp"], ["United", "Nations"], ["Red", "Cross"], ["Lincoln", "Bank"],
        ["Northwind", "Traders"], ["Global", "Health", "Fund"], ["City", "Council"],
        ["Sunrise", "Media"], ["Delta", "Airlines"], ["Green", "Party"]]
_LOC = [["Berlin"], ["Jordan"], ["Lagos"], ["Gaborone"], ["New", "York"], ["Lake", "Victoria"],
        ["Cape", "Town"], ["Lisbon"], ["Kyoto"], ["the", "Alps"], ["Nairobi"], ["Oslo"]]
_MONTH = ["January", "March", "May", "July", "September", "November"]
_PLAIN = ["Yesterday", "Today", "Later", "Officials", "Reporters", "Critics", "Many", "Some",
          "The", "Meanwhile"]
_VERB = ["met", "visited", "criticised", "thanked", "joined", "left"]

# a template is a list of parts: a literal word, or a slot name
_TEMPLATES = [
    ["{plain}", ",", "{per}", "{verb}", "{org}", "in", "{loc}", "."],
    ["{per}", "moved", "to", "{loc}", "in", "{date}", "."],
    ["{org}", "opened", "an", "office", "in", "{loc}", "on", "{date}", "."],
    ["{plain}", "said", "{per}", "would", "lead", "{org}", "."],
    ["In", "{date}", ",", "{org}", "and", "{org}", "signed", "a", "deal", "."],
    ["{per}", "and", "{per}", "{verb}", "{loc}", "."],
    ["The", "talks", "in", "{loc}", "ended", "without", "a", "result", "."],
    ["{plain}", "will", "march", "through", "{loc}", "on", "{date}", "."],
    ["A", "spokesperson", "for", "{org}", "declined", "to", "comment", "."],
    ["{plain}", "the", "weather", "was", "calm", "."],
]


def _date(rng: np.random.Generator) -> list[str]:
    form = rng.integers(3)
    month = _MONTH[rng.integers(len(_MONTH))]
    if form == 0:
        return [str(int(rng.integers(1, 29))), month, str(int(rng.integers(1990, 2025)))]
    if form == 1:
        return [month, str(int(rng.integers(1990, 2025)))]
    return [month]


def _person(rng: np.random.Generator) -> list[str]:
    first = _FIRST[rng.integers(len(_FIRST))]
    return [first] if rng.random() < 0.3 else [first, _LAST[rng.integers(len(_LAST))]]


def generate_ner_demo(n_sentences: int, seed: int) -> list[Sentence]:
    """`n_sentences` synthetic sentences (ids ner-00000, ...), the same for the same seed."""
    rng = np.random.default_rng(seed)
    out: list[Sentence] = []
    for n in range(int(n_sentences)):
        template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
        tokens: list[str] = []
        tags: list[str] = []
        for part in template:
            if part.startswith("{"):
                slot = part[1:-1]
                if slot == "plain":
                    words, typ = [_PLAIN[rng.integers(len(_PLAIN))]], ""
                elif slot == "verb":
                    words, typ = [_VERB[rng.integers(len(_VERB))]], ""
                elif slot == "per":
                    words, typ = _person(rng), "PER"
                elif slot == "org":
                    words, typ = list(_ORG[rng.integers(len(_ORG))]), "ORG"
                elif slot == "loc":
                    words, typ = list(_LOC[rng.integers(len(_LOC))]), "LOC"
                else:
                    words, typ = _date(rng), "DATE"
                if tokens and words == ["The"]:
                    words = ["the"]
                tokens += words
                tags += ["O"] * len(words) if not typ else \
                    [f"B-{typ}"] + [f"I-{typ}"] * (len(words) - 1)
            else:
                tokens.append(part)
                tags.append("O")
        if tokens and tokens[0][0].islower():
            tokens[0] = tokens[0][0].upper() + tokens[0][1:]
        out.append(Sentence(f"ner-{n:05d}", tuple(tokens), tuple(tags), n + 1))
    return out
