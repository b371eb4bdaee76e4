"""Learning to reweight examples (Ren et al. 2018) for the fine-tuning loop (S3, LLMaAA).

For a training batch with per-example losses l_i(θ) and a clean meta batch with loss L_meta(θ),
one step of lookahead θ'(ε) = θ − η ∇θ Σ_i ε_i l_i(θ) is taken at ε = 0, and the weight of
example i is w_i = max(0, −∂L_meta(θ'(ε))/∂ε_i), normalised to sum 1 over the batch (all zero when
every example's gradient points away from the meta set). At ε = 0, θ' = θ and the derivative is
exactly η ∇L_meta(θ)·∇l_i(θ): examples whose gradient agrees with the clean set's get weight,
the others (typically wrong labels) none. Since the clamp and the normalisation ignore positive
scale, the lookahead step size η is 1 (`LOOKAHEAD_LR`) without changing the weights.

The computation is explicit two-pass autograd through `torch.func.functional_call`: the
per-example gradients are never materialised, only two extra backward passes per step.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch.func import functional_call

from llmal.models.losses import ExampleLosses, classification_losses

LOOKAHEAD_LR = 1.0


def _logits(output: Any) -> torch.Tensor:
    return output.logits if hasattr(output, "logits") else output


def meta_example_weights(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor],
                         labels: torch.Tensor, meta_inputs: Mapping[str, torch.Tensor],
                         meta_labels: torch.Tensor, *,
                         example_losses: ExampleLosses = classification_losses) -> torch.Tensor:
    """Per-example weights (≥ 0, summing to 1 or all 0) of a training batch, from the meta batch.

    `inputs`/`meta_inputs` are keyword arguments of `model` (e.g. input_ids, attention_mask); its
    output is logits or has `.logits`. `example_losses(logits, labels)` gives one loss per
    example (cross-entropy by default; a tagger's is per sentence, over its tokens), the meta
    loss is their mean. The model's parameters and gradients are left untouched.
    """
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    names = list(params)
    eps = torch.zeros(len(labels), device=labels.device, requires_grad=True)
    train_logits = _logits(functional_call(model, params, args=(), kwargs=dict(inputs)))
    losses = example_losses(train_logits, labels)
    grads = torch.autograd.grad((eps * losses).sum(), [params[n] for n in names],
                                create_graph=True, allow_unused=True)
    lookahead = {n: (params[n] if g is None else params[n] - LOOKAHEAD_LR * g)
                 for n, g in zip(names, grads)}
    meta_logits = _logits(functional_call(model, lookahead, args=(), kwargs=dict(meta_inputs)))
    meta_loss = example_losses(meta_logits, meta_labels).mean()
    (grad_eps,) = torch.autograd.grad(meta_loss, eps)
    weights = torch.clamp(-grad_eps.detach(), min=0.0)
    total = weights.sum()
    return weights / total if total > 0 else weights
