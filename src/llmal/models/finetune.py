"""Fine-tuned transformer classifier: the `finetune` training recipe.

The encoder (Hugging Face id, local path or packaged alias) gets a sequence-classification head
and is trained end to end. Each `fit` starts again from the pretrained weights, as S0 and S1
retrain per AL round, unless the recipe sets `warm_start: true`. Runs on CUDA with bf16 autocast
when a GPU is present and in fp32 on CPU otherwise.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from sklearn.metrics import f1_score

from llmal.models.batching import TokenCache
from llmal.models.finetune_config import parse_encoder, parse_recipe
from llmal.models.hf_loading import count_parameters, load_sequence_classifier, max_positions
from llmal.models.losses import ExampleLosses, classification_losses
from llmal.models.perturb import perturbed_linear_proba
from llmal.models.torch_runtime import (
    autocast,
    autocast_dtype,
    device_description,
    maybe_compile,
    seed_everything,
    select_device,
    use_deterministic,
)
from llmal.models.training import (
    BatchPlan,
    NegativeBatches,
    TrainingOutcome,
    balanced_class_weights,
    make_train_step,
    predict_probabilities,
    softmax_probabilities,
    train_epochs,
)

log = logging.getLogger(__name__)


class FineTuneClassifier:
    """A transformer fine-tuned on labelled ids; implements llmal.models.base.Classifier.

    `example_losses` and `activation` are the head's loss and probabilities: one class per text
    (cross-entropy, softmax) here; a subclass with other targets (a multi-label head: one
    independent output per label) swaps both and keeps the loop."""
    uses_dev = True   # early stopping on dev labels: the AL run buys them from its annotator
    example_losses: ExampleLosses = staticmethod(classification_losses)  # type: ignore[assignment]
    activation = staticmethod(softmax_probabilities)

    def __init__(self, texts: Mapping[str, str], *, encoder: Mapping[str, Any],
                 recipe: Mapping[str, Any], n_classes: int, seed: int,
                 device: str | None = None) -> None:
        self.n_classes = n_classes
        self.seed = seed
        setup = FineTuneSetup.load(encoder, recipe, load_sequence_classifier, n_classes, seed,
                                   device)
        self.encoder, self.recipe, self.device = setup.encoder, setup.recipe, setup.device
        self.amp_dtype, self.tokenizer, self.model = setup.amp_dtype, setup.tokenizer, setup.model
        self._initial_state, self._forward, self.plan = (setup.initial_state, setup.forward,
                                                         setup.plan)
        self.tokens = TokenCache(self.tokenizer, texts, max_length=self.encoder.max_length)
        self._fits = 0
        self._last: dict[str, Any] = {}
        # learning to reweight: the last fit's mean meta weight per training example (1 = uniform)
        self.last_meta_weights: np.ndarray | None = None

    def fit(self, ids: Sequence[str], labels: np.ndarray, *,
            sample_weight: np.ndarray | None = None,
            dev: tuple[Sequence[str], np.ndarray] | None = None,
            meta: tuple[Sequence[str], np.ndarray] | None = None,
            negatives: tuple[Sequence[str], np.ndarray, float] | None = None
            ) -> "FineTuneClassifier":
        """Train on the labelled ids; with `meta` (gold-labelled ids, never test) every step
        reweights its examples by learning to reweight (llmal.models.reweight); with
        `negatives` = (ids, (n, n_classes) mask of rejected classes, loss weight) every step
        adds the weighted complementary-label loss of a batch of those items (S1)."""
        labels = self._check_labels(labels, len(ids), "labels")
        weights = self._check_weights(sample_weight, len(ids))
        if len(ids) == 0:
            raise ValueError("fit needs at least one labelled id")
        if self._fits > 0 and not self.recipe.warm_start:
            self.model.load_state_dict(self._initial_state)
        seed_everything(self.seed)  # same data + seed -> same model, whatever the round
        rng = np.random.default_rng(self.seed)
        started = time.perf_counter()
        sequences = self.tokens.get(list(ids))
        per_epoch = -(-len(ids) // self.encoder.batch_size)
        class_weights = (balanced_class_weights(labels, self.n_classes)
                         if self.recipe.class_weight == "balanced" else None)
        step = make_train_step(self._forward, device=self.device, lr=self.encoder.lr,
                               weight_decay=self.recipe.weight_decay,
                               total_steps=per_epoch * self.encoder.epochs,
                               warmup_ratio=self.recipe.warmup_ratio, amp_dtype=self.amp_dtype,
                               grad_clip=self.recipe.grad_clip, class_weights=class_weights,
                               meta=self._meta_batch(meta), example_losses=self.example_losses)
        if negatives is not None and len(negatives[0]):
            step.negatives, step.negative_weight = self._negative_batches(negatives)
        evaluate = None if dev is None or len(dev[0]) == 0 else self._dev_scorer(*dev)
        outcome = train_epochs(
            step,
            lambda epoch: self.plan.training_batches(sequences, labels, weights,
                                                     batch_size=self.encoder.batch_size, rng=rng),
            epochs=self.encoder.epochs, evaluate=evaluate, patience=self.recipe.patience)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._fits += 1
        self._record(outcome, n_train=len(ids), n_dev=0 if dev is None else len(dev[0]),
                     seconds=time.perf_counter() - started)
        self.last_meta_weights = None
        self._last["n_negative"] = 0 if step.negatives is None else len(negatives[0])  # type: ignore[index]
        if step.meta is not None:
            self.last_meta_weights, recorded = meta_weight_info(step, len(ids), len(meta[0]))  # type: ignore[index]
            self._last.update(recorded)
        return self

    def _negative_batches(self, negatives: tuple[Sequence[str], np.ndarray, float]
                          ) -> tuple[NegativeBatches, float]:
        neg_ids, rejected, weight = negatives
        rejected = np.asarray(rejected, dtype=bool)
        if rejected.shape != (len(neg_ids), self.n_classes):
            raise ValueError(f"negatives: expected a ({len(neg_ids)}, {self.n_classes}) mask of "
                             f"rejected classes, got shape {rejected.shape}")
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"negatives: the loss weight must be finite and >= 0, got {weight!r}")
        batches = NegativeBatches(self.plan, self.tokens.get(list(neg_ids)), rejected,
                                  batch_size=self.encoder.batch_size,
                                  rng=np.random.default_rng([self.seed, 1]))
        return batches, float(weight)

    def _meta_batch(self, meta: tuple[Sequence[str], np.ndarray] | None):
        if meta is None:
            return None
        meta_ids, meta_labels = meta
        if len(meta_ids) == 0:
            raise ValueError("meta: the gold meta set for learning to reweight is empty")
        meta_labels = self._check_labels(meta_labels, len(meta_ids), "meta labels")
        return self.plan.meta_batch(self.tokens.get(list(meta_ids)), meta_labels,
                                    batch_size=self.recipe.meta_batch_size, seed=self.seed)

    def predict_proba(self, ids: Sequence[str]) -> np.ndarray:
        if self._fits == 0:
            raise RuntimeError("FineTuneClassifier.predict_proba called before fit")
        if len(ids) == 0:
            return np.zeros((0, self.n_classes))
        return predict_probabilities(self._forward, self.plan, self.tokens.get(list(ids)),
                                     batch_size=self.encoder.eval_batch_size,
                                     n_classes=self.n_classes, amp_dtype=self.amp_dtype,
                                     activation=self.activation)

    # --- model outputs for query strategies (llmal.strategies) -------------------------------

    def embed(self, ids: Sequence[str]) -> np.ndarray:
        """(n, h) float32: the input of the final classification layer (for BERT the pooled
        [CLS] state), in eval mode. BADGE's last-layer gradient is (p − e_ŷ) ⊗ this."""
        return self._head_inputs(ids)

    def mc_dropout_proba(self, ids: Sequence[str], passes: int, seed: int) -> np.ndarray:
        """(passes, n, C) probabilities with dropout kept on (MC dropout, for BALD);
        seeded, and without touching the global torch random state."""
        self._require_fit("mc_dropout_proba")
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        out = np.zeros((passes, len(ids), self.n_classes))
        if len(ids) == 0:
            return out
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            self.model.train()
            try:
                for positions, batch in self.plan.inference_batches(
                        self.tokens.get(list(ids)), batch_size=self.encoder.eval_batch_size):
                    for t in range(passes):
                        with autocast(self.device, self.amp_dtype):
                            logits = self.model(input_ids=batch.input_ids,
                                                attention_mask=batch.attention_mask).logits
                        out[t, positions] = self.activation(logits.float()).cpu().numpy()
            finally:
                self.model.eval()
        return out

    def perturbed_proba(self, ids: Sequence[str], passes: int, scale: float,
                        seed: int) -> np.ndarray:
        """(passes, n, C) probabilities with Gaussian noise of norm `scale` × |W| on the final
        classification layer's weights (S1's noise stability, restricted to the head so the
        encoder runs once)."""
        H = self._head_inputs(ids)
        head = self._head_layer()
        return perturbed_linear_proba(H.astype(np.float64),
                                      head.weight.detach().float().cpu().numpy(),
                                      head.bias.detach().float().cpu().numpy()
                                      if head.bias is not None else np.zeros(self.n_classes),
                                      passes=passes, scale=scale, seed=seed)

    def _head_layer(self) -> torch.nn.Linear:
        """The last linear layer with one output per class (the classification layer)."""
        head = None
        for module in self.model.modules():
            if isinstance(module, torch.nn.Linear) and module.out_features == self.n_classes:
                head = module
        if head is None:
            raise RuntimeError(f"{type(self.model).__name__} has no linear layer with "
                               f"{self.n_classes} outputs")
        return head

    def _head_inputs(self, ids: Sequence[str]) -> np.ndarray:
        self._require_fit("embed")
        head = self._head_layer()
        out = np.zeros((len(ids), head.in_features), dtype=np.float32)
        if len(ids) == 0:
            return out
        captured: list[torch.Tensor] = []
        hook = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        self.model.eval()
        try:
            with torch.inference_mode():
                for positions, batch in self.plan.inference_batches(
                        self.tokens.get(list(ids)), batch_size=self.encoder.eval_batch_size):
                    captured.clear()
                    with autocast(self.device, self.amp_dtype):
                        self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
                    out[positions] = captured[-1].float().cpu().numpy()
        finally:
            hook.remove()
        return out

    def _require_fit(self, what: str) -> None:
        if self._fits == 0:
            raise RuntimeError(f"FineTuneClassifier.{what} called before fit")

    def info(self) -> dict[str, Any]:
        return {"recipe": "finetune", **model_info(self, self._fits), "tokenized_items": len(self.tokens),
                **self._last}

    def _dev_scorer(self, dev_ids: Sequence[str], dev_labels: np.ndarray):
        dev_labels = self._check_labels(dev_labels, len(dev_ids), "dev labels")
        dev_sequences = self.tokens.get(list(dev_ids))

        def macro_f1() -> float:
            probs = predict_probabilities(self._forward, self.plan, dev_sequences,
                                          batch_size=self.encoder.eval_batch_size,
                                          n_classes=self.n_classes, amp_dtype=self.amp_dtype)
            return float(f1_score(dev_labels, probs.argmax(axis=1), average="macro",
                                  labels=list(range(self.n_classes)), zero_division=0))
        return macro_f1

    def _record(self, outcome: TrainingOutcome, *, n_train: int, n_dev: int,
                seconds: float) -> None:
        self._last = outcome_info(outcome, n_train=n_train, n_dev=n_dev, seconds=seconds,
                                  metric="macro_f1")
        log.info("fine-tuned %s on %d items (%s): %d epochs, best dev F1 %s, %.1fs",
                 self.encoder.model, n_train, self.device, outcome.epochs_run,
                 outcome.best_dev_score, seconds)

    def _check_labels(self, labels: Any, n: int, what: str) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"{what}: expected {n} labels, got shape {labels.shape}")
        if n and (not np.issubdtype(labels.dtype, np.integer)
                  or labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"{what}: must be int class indices in [0, {self.n_classes})")
        return labels.astype(np.int64)

    def _check_weights(self, weights: Any, n: int) -> np.ndarray | None:
        if weights is None:
            return None
        weights = np.asarray(weights, dtype=np.float32)
        if weights.shape != (n,):
            raise ValueError(f"sample_weight: expected {n} weights, got shape {weights.shape}")
        if not np.all(np.isfinite(weights)) or (weights < 0).any():
            raise ValueError("sample_weight: weights must be finite and >= 0")
        return weights


def _mean_weight_per_example(log: list, n: int) -> np.ndarray:
    """Each training example's meta weight averaged over the steps it was in, scaled by its
    batch's size so that 1 means the uniform weight of plain training."""
    total, count = np.zeros(n), np.zeros(n)
    for positions, weights in log:
        if positions is None:
            continue
        np.add.at(total, positions, weights.float().cpu().numpy() * len(positions))
        np.add.at(count, positions, 1)
    return np.divide(total, count, out=np.full(n, np.nan), where=count > 0)


def meta_weight_info(step: Any, n_train: int, n_meta: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A reweighted fit's mean meta weight per training example, and what run.json records."""
    shares = [float((w == 0).float().mean()) for _, w in step.meta_weight_log]
    return (_mean_weight_per_example(step.meta_weight_log, n_train),
            {"n_meta": n_meta, "meta_zero_weight_share": round(float(np.mean(shares)), 4)})


@dataclass
class FineTuneSetup:
    """What every fine-tuned model starts from: the parsed encoder and recipe, the device and
    autocast dtype, the tokenizer and model (with a head of n outputs), the weights every
    non-warm-start fit begins from, the (maybe compiled) forward and the batch plan."""
    encoder: Any
    recipe: Any
    device: torch.device
    amp_dtype: torch.dtype | None
    tokenizer: Any
    model: torch.nn.Module
    initial_state: dict[str, torch.Tensor]
    forward: torch.nn.Module
    plan: BatchPlan

    @classmethod
    def load(cls, encoder: Mapping[str, Any], recipe: Mapping[str, Any],
             loader: Callable[[str, int], tuple[Any, Any]], n_outputs: int, seed: int,
             device: str | None) -> "FineTuneSetup":
        enc, rec = parse_encoder(encoder), parse_recipe(recipe)
        dev = select_device(device)
        use_deterministic(rec.deterministic)
        seed_everything(seed)
        tokenizer, model = loader(enc.model, n_outputs)
        limit = max_positions(model)
        if limit is not None and enc.max_length > limit:
            raise ValueError(f"encoder config: max_length {enc.max_length} exceeds the "
                             f"{limit} positions of model {enc.model!r}")
        model.to(dev)
        initial = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        plan = BatchPlan(pad_id=int(tokenizer.pad_token_id), device=dev,
                         pad_to_multiple_of=8 if dev.type == "cuda" else 1)
        return cls(enc, rec, dev, autocast_dtype(dev, rec.bf16), tokenizer, model, initial,
                   maybe_compile(model, rec.compile), plan)


def model_info(m: Any, fits: int) -> dict[str, Any]:
    """run.json's description of a fine-tuned model `m` (encoder, recipe, model, device)."""
    import transformers
    return {
        "model": m.encoder.model,
        "model_class": type(m.model).__name__,
        "n_params": count_parameters(m.model),
        "device": str(m.device),
        "device_name": device_description(m.device),
        "dtype": "bfloat16" if m.amp_dtype == torch.bfloat16 else "float32",
        "compiled": m.recipe.compile,
        "deterministic": m.recipe.deterministic,
        "warm_start": m.recipe.warm_start,
        "max_epochs": m.encoder.epochs,
        "fits": fits,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }


def outcome_info(outcome: TrainingOutcome, *, n_train: int, n_dev: int, seconds: float,
                 metric: str) -> dict[str, Any]:
    """rounds.csv/run.json fields of one fit (epochs, early stopping, dev scores, time)."""
    return {
        "n_train": n_train,
        "n_dev": n_dev,
        "epochs_run": outcome.epochs_run,
        "steps": outcome.steps,
        "stopped_early": outcome.stopped_early,
        "best_epoch": outcome.best_epoch,
        "dev_metric": metric if n_dev else None,
        "best_dev_f1": outcome.best_dev_score,
        "dev_f1_per_epoch": outcome.dev_scores,
        "train_loss_per_epoch": outcome.epoch_losses,
        "train_seconds": round(seconds, 3),
    }


def build_finetune(recipe: Mapping[str, Any], encoder: Mapping[str, Any], *,
                   texts: Mapping[str, str], n_classes: int, seed: int,
                   device: str | None = None) -> FineTuneClassifier:
    """Factory hook for llmal.models.build_classifier (recipe kind "finetune")."""
    return FineTuneClassifier(texts, encoder=encoder, recipe=recipe, n_classes=n_classes,
                              seed=seed, device=device)
