"""The SYNTHETIC multi-label demo dataset (dataset kind demo, task multilabel): comments that
llmal generates itself, deterministically from a seed, with six labels that co-occur as they do
in toxicity corpora. Nothing here is real data.

Each comment has a topic (migration, politics, sports, everyday). Hostility depends on the
topic; insults and profanity mostly come with hostility and with each other; threats are rare
(about 2%); identity attacks need hostility and mostly concern migration; `migration` is the
comment's subject. A label shows in the text through cue words it usually (not always) leaves,
and cues of other labels turn up now and then, so a classifier has work to do. Three simulated
human coders (ann_c1..ann_c3) miss and add labels at their own per-label rates and skip some
items.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from llmal.tasks.multilabel.labels import from_indicator

DEMO_LABELS = ("hostile", "insult", "profane", "threat", "migration", "identity_attack")
TOPICS = ("migration", "politics", "sports", "everyday")
TOPIC_SHARE = (0.3, 0.3, 0.2, 0.2)
TOPIC_WORDS = {
    "migration": ["border", "asylum", "refugees", "immigration", "visa", "integration", "newcomers"],
    "politics": ["parliament", "minister", "election", "party", "budget", "coalition", "vote"],
    "sports": ["match", "referee", "coach", "goal", "league", "striker", "season"],
    "everyday": ["bakery", "weather", "train", "holiday", "garden", "neighbour", "recipe"],
}
CUES = {
    "hostile": ["disgusting", "get lost", "enough of them", "sick of", "pathetic", "shameful"],
    "insult": ["idiot", "clown", "moron", "loser", "fool"],
    "profane": ["damn", "crap", "bloody", "hell"],
    "threat": ["will regret", "watch your back", "you will pay", "hunt them"],
    "migration": ["migrants", "foreigners", "the border", "asylum seekers"],
    "identity_attack": ["their kind", "those people", "go back where", "not one of us"],
}
FILLER = ["really", "today", "again", "honestly", "I think", "as usual", "this week", "well",
          "seriously", "by the way", "in my town", "everyone knows"]
P_HOSTILE = {"migration": 0.45, "politics": 0.35, "sports": 0.25, "everyday": 0.08}
CUE_SHOWS = 0.8      # a label leaves one of its cues
CUE_STRAY = 0.04     # a cue of a label the comment does not have
CODER_MISS = (0.10, 0.15, 0.12, 0.25, 0.05, 0.20)    # per label: a coder misses it
CODER_ADD = (0.04, 0.03, 0.02, 0.01, 0.02, 0.02)     # per label: a coder adds it
CODER_SKIP = 0.15


def demo_label_sets(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(topics, (n, 6) 0/1 label rows) with the co-occurrence of the module docstring."""
    topics = rng.choice(len(TOPICS), size=n, p=TOPIC_SHARE)
    y = np.zeros((n, len(DEMO_LABELS)), dtype=np.int8)
    u = rng.random((n, 6))
    hostile = u[:, 0] < np.array([P_HOSTILE[TOPICS[t]] for t in topics])
    migration = (topics == 0) & (u[:, 4] < 0.85) | (topics == 1) & (u[:, 4] < 0.15)
    insult = np.where(hostile, u[:, 1] < 0.45, u[:, 1] < 0.02)
    profane = np.where(insult, u[:, 2] < 0.55, np.where(hostile, u[:, 2] < 0.2, u[:, 2] < 0.03))
    threat = hostile & (u[:, 3] < 0.06)
    identity = hostile & np.where(migration, u[:, 5] < 0.4, u[:, 5] < 0.03)
    for k, col in enumerate((hostile, insult, profane, threat, migration, identity)):
        y[:, k] = col
    return topics, y


def _text(topic: str, labels: np.ndarray, rng: np.random.Generator) -> str:
    words = list(rng.choice(TOPIC_WORDS[topic], size=2, replace=False))
    for k, name in enumerate(DEMO_LABELS):
        if (labels[k] and rng.random() < CUE_SHOWS) or (not labels[k] and rng.random() < CUE_STRAY):
            words.append(str(rng.choice(CUES[name])))
    words += list(rng.choice(FILLER, size=int(rng.integers(1, 4)), replace=False))
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def _coder(y: np.ndarray, rng: np.random.Generator) -> pd.Series:
    u = rng.random(y.shape)
    flipped = np.where(y == 1, u >= np.array(CODER_MISS), u < np.array(CODER_ADD)).astype(np.int8)
    masks = pd.Series(from_indicator(flipped), dtype="Int64")
    return masks.mask(rng.random(len(y)) < CODER_SKIP)


def generate_multilabel_demo(n_items: int, seed: int) -> pd.DataFrame:
    """The synthetic items table: id, text, gold (label-set integer), topic, source, ann_c1..3."""
    rng = np.random.default_rng(seed)
    topics, y = demo_label_sets(n_items, rng)
    texts = [_text(TOPICS[t], y[i], rng) for i, t in enumerate(topics)]
    items = pd.DataFrame({
        "id": [f"ml{i:05d}" for i in range(n_items)], "text": texts,
        "gold": from_indicator(y).astype(np.int64), "topic": [TOPICS[t] for t in topics],
        "source": "synthetic multi-label demo",
    })
    for c in range(1, 4):
        items[f"ann_c{c}"] = _coder(y, rng)
    return items
