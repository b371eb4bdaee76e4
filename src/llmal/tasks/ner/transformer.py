"""A fine-tuned transformer tagger (task: ner, recipe kind finetune): token classification.

The encoder (Hugging Face id, local path or packaged alias, as for the classification recipe)
gets a token-classification head over the task's BIO tags and is trained through the same
machinery as llmal.models.finetune: each fit starts again from the pretrained weights (unless
`warm_start`), early stopping on the annotator-labelled dev sentences (strict entity F1, micro,
with seqeval), CUDA with bf16 autocast when a GPU is present, fp32 on CPU otherwise, and learning
to reweight (S3) with a gold meta set of sentences.

Alignment: a sentence's words are tokenized with `is_split_into_words`; each word's tag sits on
its first sub-token, later sub-tokens and special tokens carry no label (ignored by the loss),
and a word's prediction is read from its first sub-token. A word with no sub-token of its own
(cut off at `max_length`, or one the tokenizer drops) is predicted "O" with certainty; run.json
counts them (`unseen_words`).

Decoding: the per-word tag marginals are the first sub-token's softmax; the best sequence is the
most probable *valid* BIO sequence under them (Viterbi with "I-T" allowed only after "B-T" or
"I-T"), and its log-probability is the sum of its tags' log marginals, as the sequence
strategies (least_confidence, mnlp) expect.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from llmal.hub import resolve_model
from llmal.models.finetune import FineTuneSetup, meta_weight_info, model_info, outcome_info
from llmal.models.hf_loading import load_token_classifier
from llmal.models.losses import IGNORE_INDEX, token_example_losses
from llmal.models.torch_runtime import autocast, seed_everything
from llmal.models.training import make_train_step, train_epochs
from llmal.tasks.ner.metrics import seqeval_scores
from llmal.tasks.ner.task import SequenceOutput

log = logging.getLogger(__name__)


class WordPieces:
    """Sub-token ids per sentence and, per word, the position of its first sub-token (-1: none),
    computed on first use and kept for later AL rounds."""

    def __init__(self, tokenizer: Any, tokens: Mapping[str, Sequence[str]], *, max_length: int) -> None:
        self.tokenizer, self.tokens, self.max_length = tokenizer, tokens, max_length
        self._ids: dict[str, np.ndarray] = {}
        self._first: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def _encode(self, ids: Sequence[str]) -> None:
        missing = [i for i in dict.fromkeys(ids) if i not in self._ids]
        if not missing:
            return
        unknown = [i for i in missing if i not in self.tokens]
        if unknown:
            raise KeyError(f"no tokens for sentence ids {unknown[:5]}")
        encoded = self.tokenizer([list(self.tokens[i]) for i in missing], is_split_into_words=True,
                                 truncation=True, max_length=self.max_length)
        for n, item in enumerate(missing):
            first = np.full(len(self.tokens[item]), -1, dtype=np.int64)
            for pos, word in enumerate(encoded.word_ids(n)):
                if word is not None and first[word] < 0:
                    first[word] = pos
            self._ids[item] = np.asarray(encoded["input_ids"][n], dtype=np.int64)
            self._first[item] = first

    def get(self, ids: Sequence[str]) -> list[np.ndarray]:
        self._encode(ids)
        return [self._ids[i] for i in ids]

    def first(self, ids: Sequence[str]) -> list[np.ndarray]:
        self._encode(ids)
        return [self._first[i] for i in ids]

    def unseen_words(self) -> int:
        """Words of the sentences tokenized so far that have no sub-token of their own."""
        return int(sum(int((f < 0).sum()) for f in self._first.values()))

    def token_labels(self, ids: Sequence[str], tags: Sequence[Sequence[int]]) -> np.ndarray:
        """Per sentence, an array over its sub-tokens: the word's tag index on each word's first
        sub-token, IGNORE_INDEX elsewhere (an object array, one array per sentence)."""
        out = np.empty(len(ids), dtype=object)
        for n, (seq, first, t) in enumerate(zip(self.get(ids), self.first(ids), tags)):
            row = np.full(len(seq), IGNORE_INDEX, dtype=np.int64)
            seen = first >= 0
            row[first[seen]] = np.asarray(t, dtype=np.int64)[seen]
            out[n] = row
        return out


def allowed_transitions(tag_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(start, transition) masks of valid BIO: no sequence starts with I-T, and I-T follows only
    B-T or I-T."""
    k = len(tag_names)
    start = np.ones(k, dtype=bool)
    trans = np.ones((k, k), dtype=bool)
    for j, tag in enumerate(tag_names):
        if tag.startswith("I-"):
            start[j] = False
            typ = tag[2:]
            trans[:, j] = [prev in (f"B-{typ}", f"I-{typ}") for prev in tag_names]
    return start, trans


def viterbi(log_marginals: np.ndarray, start: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, float]:
    """The valid tag path maximising the sum of log marginals, and that sum."""
    n, k = log_marginals.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    neg = -np.inf
    score = np.where(start, log_marginals[0], neg)
    back = np.zeros((n, k), dtype=np.int64)
    allowed = np.where(trans, 0.0, neg)
    for t in range(1, n):
        cand = score[:, None] + allowed           # (prev, next)
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + log_marginals[t]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path, float(score[path[-1]])


class TransformerTagger:
    uses_dev = True   # early stopping on the annotator's dev sentences

    def __init__(self, tokens: Mapping[str, Sequence[str]], tag_names: Sequence[str], *,
                 encoder: Mapping[str, Any], recipe: Mapping[str, Any], seed: int,
                 device: str | None = None) -> None:
        self.tag_names = list(tag_names)
        self.types = [t[2:] for t in self.tag_names if t.startswith("B-")]
        self.n_classes = len(self.tag_names)
        self.seed = int(seed)
        setup = FineTuneSetup.load(encoder, recipe, load_token_classifier, self.n_classes, seed, device)
        if setup.recipe.class_weight != "none":
            raise ValueError("recipe config: class_weight applies to text classification, not to "
                             "a tagger (task: ner)")
        self.encoder, self.recipe, self.device = setup.encoder, setup.recipe, setup.device
        self.amp_dtype, self.model, self.plan = setup.amp_dtype, setup.model, setup.plan
        self._initial_state, self._forward = setup.initial_state, setup.forward
        self.tokenizer = _words_tokenizer(setup.tokenizer, encoder)
        self.pieces = WordPieces(self.tokenizer, tokens, max_length=self.encoder.max_length)
        self.tokens = tokens
        self._index = {t: n for n, t in enumerate(self.tag_names)}
        self._start, self._trans = allowed_transitions(self.tag_names)
        self._fits = 0
        self._last: dict[str, Any] = {}
        self.last_meta_weights: np.ndarray | None = None

    # --- training ------------------------------------------------------------------------
    def _tag_ids(self, labels: Sequence[Sequence[str]], n: int, what: str) -> list[np.ndarray]:
        if len(labels) != n:
            raise ValueError(f"{what}: expected {n} tag sequences, got {len(labels)}")
        out = []
        for seq in labels:
            unknown = [t for t in seq if t not in self._index]
            if unknown:
                raise ValueError(f"{what}: unknown tag {unknown[0]!r} (tags: {self.tag_names})")
            out.append(np.array([self._index[t] for t in seq], dtype=np.int64))
        return out

    def fit(self, ids: Sequence[str], labels: np.ndarray, *, sample_weight: np.ndarray | None = None,
            dev: tuple[Sequence[str], np.ndarray] | None = None,
            meta: tuple[Sequence[str], np.ndarray] | None = None) -> "TransformerTagger":
        """Train on the labelled sentences (tag sequences); `dev` = the annotator's dev sentences
        for early stopping; `meta` = gold sentences for learning to reweight (never test)."""
        ids = [str(i) for i in ids]
        if not ids:
            raise ValueError("fit needs at least one labelled sentence")
        tags = self._tag_ids(list(labels), len(ids), "labels")
        for item, t in zip(ids, tags):
            if len(t) != len(self.tokens[item]):
                raise ValueError(f"labels of sentence {item!r}: {len(t)} tags for "
                                 f"{len(self.tokens[item])} tokens")
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
        if self._fits > 0 and not self.recipe.warm_start:
            self.model.load_state_dict(self._initial_state)
        seed_everything(self.seed)
        rng = np.random.default_rng(self.seed)
        started = time.perf_counter()
        sequences = self.pieces.get(ids)
        targets = self.pieces.token_labels(ids, tags)
        meta_batch = None
        if meta is not None:
            meta_ids = [str(i) for i in meta[0]]
            if not meta_ids:
                raise ValueError("meta: the gold meta set for learning to reweight is empty")
            meta_tags = self._tag_ids(list(meta[1]), len(meta_ids), "meta labels")
            meta_batch = self.plan.meta_batch(self.pieces.get(meta_ids),
                                              self.pieces.token_labels(meta_ids, meta_tags),
                                              batch_size=self.recipe.meta_batch_size, seed=self.seed)
        per_epoch = -(-len(ids) // self.encoder.batch_size)
        step = make_train_step(self._forward, device=self.device, lr=self.encoder.lr,
                               weight_decay=self.recipe.weight_decay,
                               total_steps=per_epoch * self.encoder.epochs,
                               warmup_ratio=self.recipe.warmup_ratio, amp_dtype=self.amp_dtype,
                               grad_clip=self.recipe.grad_clip, meta=meta_batch,
                               example_losses=token_example_losses)
        evaluate = None
        if dev is not None and len(dev[0]):
            dev_ids, dev_tags = [str(i) for i in dev[0]], [list(t) for t in dev[1]]
            evaluate = lambda: self._entity_f1(dev_ids, dev_tags)  # noqa: E731
        outcome = train_epochs(
            step, lambda epoch: self.plan.training_batches(sequences, targets, weights,
                                                           batch_size=self.encoder.batch_size, rng=rng),
            epochs=self.encoder.epochs, evaluate=evaluate, patience=self.recipe.patience)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._fits += 1
        seconds = time.perf_counter() - started
        self._last = outcome_info(outcome, n_train=len(ids), n_dev=0 if dev is None else len(dev[0]),
                                  seconds=seconds, metric="entity_f1_micro")
        self.last_meta_weights = None
        if meta_batch is not None:
            self.last_meta_weights, recorded = meta_weight_info(step, len(ids), len(meta[0]))  # type: ignore[index]
            self._last.update(recorded)
        log.info("fine-tuned tagger %s on %d sentences (%s): %d epochs, best dev entity F1 %s, %.1fs",
                 self.encoder.model, len(ids), self.device, outcome.epochs_run,
                 outcome.best_dev_score, seconds)
        return self

    def _entity_f1(self, ids: Sequence[str], gold: Sequence[Sequence[str]]) -> float:

        return float(seqeval_scores(gold, self._decode(ids).best, self.types)["f1_micro"])

    # --- prediction ------------------------------------------------------------------------
    def _word_marginals(self, ids: Sequence[str]) -> list[np.ndarray]:
        sequences, firsts = self.pieces.get(ids), self.pieces.first(ids)
        out: list[np.ndarray] = [np.zeros((0, self.n_classes))] * len(ids)
        self.model.eval()
        with torch.inference_mode():
            for positions, batch in self.plan.inference_batches(
                    sequences, batch_size=self.encoder.eval_batch_size):
                with autocast(self.device, self.amp_dtype):
                    logits = self._forward(input_ids=batch.input_ids,
                                           attention_mask=batch.attention_mask).logits
                probs = torch.softmax(logits.float(), dim=-1).cpu().numpy().astype(np.float64)
                for row, p in enumerate(positions):
                    first = firsts[p]
                    m = np.zeros((len(first), self.n_classes))
                    seen = first >= 0
                    m[seen] = probs[row, first[seen]]
                    m[~seen, 0] = 1.0   # a word the model never saw: "O"
                    out[p] = m
        return out

    def predict_proba(self, ids: Sequence[str]) -> SequenceOutput:
        if self._fits == 0:
            raise RuntimeError("the transformer tagger is not fitted")
        return self._decode(ids)

    def _decode(self, ids: Sequence[str]) -> SequenceOutput:
        ids = [str(i) for i in ids]
        marginals = self._word_marginals(ids)
        best, logp = [], np.zeros(len(ids))
        for n, m in enumerate(marginals):
            path, score = viterbi(np.log(np.clip(m, 1e-12, 1.0)), self._start, self._trans)
            best.append([self.tag_names[j] for j in path])
            logp[n] = score
        return SequenceOutput(marginals, best, logp)

    def embed(self, ids: Sequence[str]) -> np.ndarray:
        """Sentence embeddings (kmeans): the fine-tuned encoder's last hidden states, averaged
        over the sentence's sub-tokens."""
        sequences = self.pieces.get([str(i) for i in ids])
        out: np.ndarray | None = None
        self.model.eval()
        with torch.inference_mode():
            for positions, batch in self.plan.inference_batches(
                    sequences, batch_size=self.encoder.eval_batch_size):
                with autocast(self.device, self.amp_dtype):
                    hidden = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                        output_hidden_states=True).hidden_states[-1]
                mask = batch.attention_mask.unsqueeze(-1).float()
                pooled = ((hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
                if out is None:
                    out = np.zeros((len(sequences), pooled.shape[1]), dtype=np.float32)
                out[positions] = pooled
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def info(self) -> dict[str, Any]:
        return {"recipe": "finetune", "task": "ner", **model_info(self, self._fits),
                "tokenized_sentences": len(self.pieces), "unseen_words": self.pieces.unseen_words(),
                **self._last}


def _words_tokenizer(tokenizer: Any, encoder: Mapping[str, Any]) -> Any:
    """The tokenizer, able to take pre-split words: a fast tokenizer (word_ids), reloaded with
    add_prefix_space for byte-level BPE models (RoBERTa, GPT-2), which need it for that."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"encoder {encoder.get('model')!r}: a tagger needs a fast tokenizer (word "
                         f"alignment), but {type(tokenizer).__name__} is not one")
    try:
        tokenizer([["a"]], is_split_into_words=True)
    except ValueError as err:
        if "add_prefix_space" not in str(err):
            raise
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(str(encoder["model"])),
                                                  add_prefix_space=True)
    return tokenizer
