"""The fine-tuning loop: one optimisation step, epochs with early stopping, batched inference.

`TrainStep` is the unit the throughput benchmark (benchmarks/finetune_throughput.py) times, so
what is measured there is exactly what `FineTuneClassifier.fit` runs.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from llmal.models.batching import Batch, collate, length_sorted_batches
from llmal.models.losses import ExampleLosses, classification_losses
from llmal.models.reweight import meta_example_weights
from llmal.models.torch_runtime import autocast

log = logging.getLogger(__name__)

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def make_optimizer(model: torch.nn.Module, *, lr: float, weight_decay: float,
                   device: torch.device) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and norm weights; the fused kernel on CUDA."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith(_NO_DECAY) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, fused=device.type == "cuda")


def linear_warmup_schedule(optimizer: torch.optim.Optimizer, *, total_steps: int,
                           warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly over `warmup_steps`, then falling linearly to 0."""
    total_steps = max(total_steps, 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (k * n_c) per class, as scikit-learn's class_weight="balanced"; 0 for absent classes."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                           weights: torch.Tensor | None = None,
                           class_weights: torch.Tensor | None = None,
                           example_losses: ExampleLosses | None = None) -> torch.Tensor:
    """Mean over the batch of weight_i * class_weight[y_i] * CE_i (in fp32).

    Weights scale each example's contribution (they are not renormalised per batch), so a
    weight of 0 removes an example and 0.5 halves its pull, as scikit-learn's sample_weight does.
    `example_losses` gives CE_i (default: one class per example; token_example_losses for
    taggers, where class weights do not apply).
    """
    losses = (example_losses or classification_losses)(logits, labels)
    if class_weights is not None:
        losses = losses * class_weights[labels]
    if weights is not None:
        losses = losses * weights
    return losses.mean()


def complementary_label_loss(logits: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Per-example negative-learning loss −Σ_{c rejected} log(1 − p_c) (in fp32).

    `rejected` is an (n, k) 0/1 mask of the classes every annotator rejected for the example.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    return -(rejected.float() * torch.log1p(-probs.clamp(max=1.0 - 1e-6))).sum(dim=-1)


class NegativeBatches:
    """Endless shuffled mini-batches of the negative-learning items (complementary labels),
    one drawn per training step next to the ordinary batch."""

    def __init__(self, plan: "BatchPlan", sequences: Sequence[np.ndarray], rejected: np.ndarray,
                 *, batch_size: int, rng: np.random.Generator) -> None:
        if len(sequences) == 0 or rejected.shape[0] != len(sequences):
            raise ValueError("negative learning needs one rejected-class row per item, and items")
        self.plan, self.sequences, self.rejected = plan, sequences, rejected
        self.batch_size, self.rng = batch_size, rng
        self._queue: list[int] = []

    def __call__(self) -> tuple[Batch, torch.Tensor]:
        if len(self._queue) < self.batch_size:
            self._queue += [int(i) for i in self.rng.permutation(len(self.sequences))]
        positions = np.array(self._queue[:self.batch_size])
        del self._queue[:self.batch_size]
        batch = self.plan._device_batch(self.sequences, positions, None, None)
        mask = torch.as_tensor(self.rejected[positions], dtype=torch.float32).to(self.plan.device)
        return batch, mask


class MetaBatches:
    """Endless shuffled mini-batches of the meta set (learning to reweight), one per step."""

    def __init__(self, plan: "BatchPlan", sequences: Sequence[np.ndarray], labels: np.ndarray, *,
                 batch_size: int, rng: np.random.Generator) -> None:
        self.plan, self.sequences, self.labels = plan, sequences, labels
        self.batch_size, self.rng = batch_size, rng
        self._queue: list[int] = []

    def __call__(self) -> Batch:
        if len(self._queue) < self.batch_size:
            self._queue += [int(i) for i in self.rng.permutation(len(self.sequences))]
        positions = np.array(self._queue[:self.batch_size])
        del self._queue[:self.batch_size]
        return self.plan._device_batch(self.sequences, positions, self.labels[positions], None)


@dataclass
class TrainStep:
    """One optimisation step: forward (autocast), weighted loss, backward, clip, AdamW, schedule."""
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    amp_dtype: torch.dtype | None = None
    grad_clip: float | None = 1.0
    class_weights: torch.Tensor | None = None
    steps_done: int = 0
    # learning to reweight: the clean meta batch (on `device`), or a callable drawing one per step
    # (MetaBatches), and (positions, weights) per step
    meta: "Batch | MetaBatches | None" = None
    meta_weight_log: list[tuple[np.ndarray | None, torch.Tensor]] = field(default_factory=list)
    # negative learning: a complementary-label batch per step, its loss scaled by negative_weight
    negatives: NegativeBatches | None = None
    negative_weight: float = 0.0
    # per-example losses (classification by default; token_example_losses for a tagger)
    example_losses: ExampleLosses = classification_losses

    def __call__(self, batch: Batch) -> torch.Tensor:
        """Run the step on a batch already on `device`; return the detached loss (no host sync)."""
        if batch.labels is None:
            raise ValueError("a training batch needs labels")
        if not self.model.training:
            self.model.train()
        weights = batch.weights
        if self.meta is not None:
            weights = self._meta_weights(batch)
        with autocast(self.device, self.amp_dtype):
            logits = self.model(input_ids=batch.input_ids,
                                attention_mask=batch.attention_mask).logits
        loss = weighted_cross_entropy(logits, batch.labels, weights, self.class_weights,
                                      self.example_losses)
        if self.negatives is not None:
            negative, rejected = self.negatives()
            with autocast(self.device, self.amp_dtype):
                negative_logits = self.model(input_ids=negative.input_ids,
                                             attention_mask=negative.attention_mask).logits
            loss = loss + self.negative_weight * complementary_label_loss(
                negative_logits, rejected).mean()
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_done += 1
        return loss.detach()

    def _meta_weights(self, batch: Batch) -> torch.Tensor:
        """Ren et al.'s per-example weights (normalised to sum 1 over the batch), times the
        batch size so that weighted_cross_entropy's mean becomes their weighted sum, times any
        sample weights."""
        assert self.meta is not None and batch.labels is not None
        meta = self.meta() if isinstance(self.meta, MetaBatches) else self.meta
        model = getattr(self.model, "_orig_mod", self.model)  # the module under torch.compile
        with autocast(self.device, self.amp_dtype):
            meta_weights = meta_example_weights(
                model, {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask},
                batch.labels,
                {"input_ids": meta.input_ids, "attention_mask": meta.attention_mask},
                meta.labels, example_losses=self.example_losses)  # type: ignore[arg-type]
        self.meta_weight_log.append((batch.positions, meta_weights))
        weights = meta_weights * len(batch.labels)
        return weights if batch.weights is None else weights * batch.weights


def make_train_step(model: torch.nn.Module, *, device: torch.device, lr: float,
                    weight_decay: float, total_steps: int, warmup_ratio: float,
                    amp_dtype: torch.dtype | None, grad_clip: float | None,
                    class_weights: np.ndarray | None = None,
                    meta: "Batch | MetaBatches | None" = None,
                    example_losses: ExampleLosses = classification_losses) -> TrainStep:
    optimizer = make_optimizer(model, lr=lr, weight_decay=weight_decay, device=device)
    scheduler = linear_warmup_schedule(optimizer, total_steps=total_steps,
                                       warmup_steps=math.ceil(warmup_ratio * total_steps))
    cw = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32,
                                                             device=device)
    return TrainStep(model, optimizer, scheduler, device, amp_dtype, grad_clip, cw, meta=meta,
                     example_losses=example_losses)


@dataclass
class BatchPlan:
    """How token sequences become device batches (shared by training, inference, benchmark)."""
    pad_id: int
    device: torch.device
    pad_to_multiple_of: int = 1

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    def training_batches(self, sequences: Sequence[np.ndarray], labels: np.ndarray,
                         weights: np.ndarray | None, *, batch_size: int,
                         rng: np.random.Generator) -> Iterator[Batch]:
        """One epoch: shuffled length-bucketed batches, moved to the device without blocking."""
        lengths = [len(s) for s in sequences]
        for positions in length_sorted_batches(lengths, batch_size, generator=rng):
            batch = self._device_batch(sequences, positions, labels[positions],
                                       None if weights is None else weights[positions])
            batch.positions = positions
            yield batch

    def meta_batch(self, sequences: Sequence[np.ndarray], labels: np.ndarray, *,
                   batch_size: int | None = None, seed: int = 0) -> "Batch | MetaBatches":
        """The meta set as one device batch, or (`batch_size` below its size) endless shuffled
        meta mini-batches of that size, one per step (Ren et al. 2018 draw one per step too):
        the cost of a step then no longer grows with the meta set."""
        if batch_size is not None and batch_size < len(sequences):
            return MetaBatches(self, sequences, labels, batch_size=batch_size,
                               rng=np.random.default_rng([seed, 2]))
        return self._device_batch(sequences, np.arange(len(sequences)), labels, None)

    def inference_batches(self, sequences: Sequence[np.ndarray], *, batch_size: int
                          ) -> Iterator[tuple[np.ndarray, Batch]]:
        """(positions, batch) pairs, sorted by length; positions index into `sequences`."""
        for positions in length_sorted_batches([len(s) for s in sequences], batch_size):
            yield positions, self._device_batch(sequences, positions, None, None)

    def _device_batch(self, sequences: Sequence[np.ndarray], positions: np.ndarray,
                      labels: np.ndarray | None, weights: np.ndarray | None) -> Batch:
        batch = collate([sequences[p] for p in positions], pad_id=self.pad_id, labels=labels,
                        weights=weights, pad_to_multiple_of=self.pad_to_multiple_of,
                        pin_memory=self.pin_memory)
        return batch.to(self.device, non_blocking=self.pin_memory)


Activation = Callable[[torch.Tensor], torch.Tensor]


def softmax_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """One distribution over the classes per row."""
    return torch.softmax(logits, dim=-1)


def sigmoid_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """An independent probability per output (a multi-label head)."""
    return torch.sigmoid(logits)


@torch.inference_mode()
def predict_probabilities(model: torch.nn.Module, plan: BatchPlan,
                          sequences: Sequence[np.ndarray], *, batch_size: int, n_classes: int,
                          amp_dtype: torch.dtype | None,
                          activation: Activation = softmax_probabilities) -> np.ndarray:
    """Probabilities (float64) of the logits by `activation` (softmax over classes by default;
    sigmoid_probabilities for independent outputs), rows in the order of `sequences`."""
    model.eval()
    out = np.zeros((len(sequences), n_classes), dtype=np.float64)
    pending: list[tuple[np.ndarray, torch.Tensor]] = []
    for positions, batch in plan.inference_batches(sequences, batch_size=batch_size):
        with autocast(plan.device, amp_dtype):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        pending.append((positions, activation(logits.float())))
    for positions, probs in pending:
        out[positions] = probs.cpu().numpy()
    return out


@dataclass
class TrainingOutcome:
    epochs_run: int = 0
    steps: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    dev_scores: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def best_dev_score(self) -> float | None:
        return None if self.best_epoch is None else self.dev_scores[self.best_epoch - 1]


def train_epochs(step: TrainStep, epoch_batches: Callable[[int], Iterable[Batch]], *,
                 epochs: int, evaluate: Callable[[], float] | None = None,
                 patience: int = 2) -> TrainingOutcome:
    """Run up to `epochs` epochs; with `evaluate`, stop after `patience` evaluations without
    improvement and restore the weights of the best epoch."""
    outcome = TrainingOutcome()
    best_state: dict[str, torch.Tensor] | None = None
    since_best = 0
    for epoch in range(1, epochs + 1):
        loss_sum = torch.zeros((), device=step.device)
        n_batches = 0
        for batch in epoch_batches(epoch):
            loss_sum += step(batch)
            n_batches += 1
        outcome.epochs_run = epoch
        outcome.epoch_losses.append(float(loss_sum) / max(n_batches, 1))
        if evaluate is None:
            log.info("epoch %d: train loss %.4f", epoch, outcome.epoch_losses[-1])
            continue
        score = evaluate()
        outcome.dev_scores.append(score)
        log.info("epoch %d: train loss %.4f, dev score %.4f", epoch, outcome.epoch_losses[-1],
                 score)
        if outcome.best_epoch is None or score > outcome.dev_scores[outcome.best_epoch - 1]:
            outcome.best_epoch, since_best = epoch, 0
            best_state = {k: v.detach().to("cpu", copy=True)
                          for k, v in step.model.state_dict().items()}
        else:
            since_best += 1
            if since_best >= patience:
                outcome.stopped_early = epoch < epochs
                break
    if best_state is not None and outcome.best_epoch != outcome.epochs_run:
        step.model.load_state_dict(best_state)
    outcome.steps = step.steps_done
    return outcome
