"""A SYNTHETIC relation-extraction dataset: entity-marked sentence classification.

Relation extraction in llmal's frame: each item is one sentence with its two entities marked
inline, `[E1]...[/E1]` and `[E2]...[/E2]`, and the label is the relation the sentence states
between them: no_relation, employed_by (person -> organisation), located_in (organisation ->
city) or founded_by (organisation -> person). Every name, firm and sentence is made up by the
templates below, deterministically from a seed; no text comes from a real source. Some templates
mention both entities without stating a relation (no_relation), and some are hedged ("is said
to", "was once rumoured"), which raises the latent ambiguity and the simulated annotators'
error rate. The topic is the entity-type pair (PER-ORG, ORG-LOC, ORG-PER), so errors can be
broken down by it. Same (n_items, seed) gives the same table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

RELATION_NAMES = ("no_relation", "employed_by", "located_in", "founded_by")
RELATION_SOURCE = "synthetic-relations"

FIRST = ["Anna", "Jonas", "Mira", "Tomasz", "Leila", "Kofi", "Ines", "Piet", "Sanne", "Ravi",
         "Olga", "Emeka", "Clara", "Yusuf", "Hanna", "Mateo"]
LAST = ["Brandt", "Okafor", "Lindqvist", "Moreau", "Petrova", "Haddad", "Kowalczyk", "Varga",
        "Jansen", "Iyer", "Castillo", "Nakamura", "Weber", "Achterberg"]
ORG_A = ["Nordlicht", "Quellwerk", "Bluefinch", "Stahlberg", "Kestrel", "Lumora", "Vantage",
         "Brightwater", "Ostara", "Feldmark", "Corvid", "Silbermond"]
ORG_B = ["Systems", "Logistik", "Labs", "Energie", "Analytics", "Robotics", "Foods", "Media"]
CITIES = ["Leipzig", "Porto", "Tampere", "Gdansk", "Lyon", "Utrecht", "Graz", "Bilbao", "Aarhus",
          "Brno"]

E = "[E1]{a}[/E1]"
F = "[E2]{b}[/E2]"
# relation -> (entity-type pair, [(template, ambiguity range)])
TEMPLATES: dict[str, tuple[str, list[tuple[str, tuple[float, float]]]]] = {
    "employed_by": ("PER-ORG", [
        (f"{E} has worked as an engineer at {F} since {{year}}.", (0.0, 0.2)),
        (f"{E}, a senior analyst at {F}, presented the figures.", (0.0, 0.2)),
        (f"After years abroad, {E} joined {F} as head of sales.", (0.1, 0.3)),
        (f"{E} is said to have taken a job with {F} last spring.", (0.5, 0.8)),
    ]),
    "located_in": ("ORG-LOC", [
        (f"{E} is headquartered in {F}.", (0.0, 0.15)),
        (f"The main plant of {E} sits on the outskirts of {F}.", (0.1, 0.3)),
        (f"{E} moved its offices to {F} in {{year}}.", (0.1, 0.3)),
        (f"{E} was once rumoured to open a site in {F}.", (0.6, 0.9)),
    ]),
    "founded_by": ("ORG-PER", [
        (f"{E} was founded by {F} in {{year}}.", (0.0, 0.15)),
        (f"{F} started {E} in a garage with two friends.", (0.1, 0.3)),
        (f"{E}, the company {F} set up after university, turned a profit.", (0.2, 0.4)),
        (f"Some credit {F} with the idea behind {E}.", (0.6, 0.9)),
    ]),
    "no_relation": ("", [
        (f"{E} and {F} were both mentioned in the same trade report.", (0.1, 0.3)),
        (f"{E} criticised {F} in an interview on {{day}}.", (0.2, 0.5)),
        (f"Neither {E} nor {F} commented on the merger.", (0.1, 0.3)),
        (f"{E} met representatives of {F} at a fair in {{city}}.", (0.3, 0.6)),
    ]),
}
RELATION_WEIGHTS = {"no_relation": 0.35, "employed_by": 0.25, "located_in": 0.2, "founded_by": 0.2}
NO_RELATION_PAIRS = ("PER-ORG", "ORG-LOC", "ORG-PER")
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
ANNOTATOR_ERRORS = {"r1": 0.03, "r2": 0.06, "r3": 0.10}  # base error; grows with ambiguity


def _pick(rng: np.random.Generator, options: list[str] | tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _entity(rng: np.random.Generator, kind: str) -> str:
    if kind == "PER":
        return f"{_pick(rng, FIRST)} {_pick(rng, LAST)}"
    if kind == "ORG":
        return f"{_pick(rng, ORG_A)} {_pick(rng, ORG_B)}"
    return _pick(rng, CITIES)


def generate_relations(n_items: int = 600, seed: int = 0) -> pd.DataFrame:
    """The SYNTHETIC relation dataset as an items table: id ("rel-00001", ...), text (entities
    marked), gold (index into RELATION_NAMES), topic (entity-type pair), source, ann_r1..ann_r3,
    meta_ambiguity."""
    if n_items < 1:
        raise ValueError(f"dataset.n_items must be at least 1, got {n_items}")
    rng = np.random.default_rng(seed)
    names = list(RELATION_WEIGHTS)
    p = np.array([RELATION_WEIGHTS[n] for n in names])
    rows = []
    for i in range(n_items):
        relation = names[int(rng.choice(len(names), p=p / p.sum()))]
        pair, templates = TEMPLATES[relation]
        pair = pair or _pick(rng, NO_RELATION_PAIRS)
        template, (lo, hi) = templates[int(rng.integers(len(templates)))]
        a_kind, b_kind = pair.split("-")
        text = template.format(a=_entity(rng, a_kind), b=_entity(rng, b_kind),
                               year=int(rng.integers(1990, 2024)), day=_pick(rng, DAYS),
                               city=_pick(rng, CITIES))
        ambiguity = float(np.clip(rng.uniform(lo, hi), 0.0, 1.0))
        rows.append((f"rel-{i + 1:05d}", text, RELATION_NAMES.index(relation), pair, round(ambiguity, 4)))
    df = pd.DataFrame(rows, columns=["id", "text", "gold", "topic", "meta_ambiguity"])
    df["gold"] = df["gold"].astype("int64")
    df["source"] = RELATION_SOURCE
    gold, amb = df["gold"].to_numpy(), df["meta_ambiguity"].to_numpy()
    for name, base in ANNOTATOR_ERRORS.items():
        wrong = rng.random(len(df)) < np.clip(base + 0.4 * amb ** 1.5, 0.0, 0.6)
        # a wrong label is most often "no relation" (a missed relation), else another relation
        other = np.where(rng.random(len(df)) < 0.6, 0, rng.integers(1, len(RELATION_NAMES), len(df)))
        other = np.where(other == gold, (gold + 1) % len(RELATION_NAMES), other)
        df[f"ann_{name}"] = pd.array(np.where(wrong, other, gold), dtype="Int64")
    return df[["id", "text", "gold", "topic", "source", "ann_r1", "ann_r2", "ann_r3", "meta_ambiguity"]]
