"""Names of the query strategies and what each needs from the model.

Imports nothing heavy (no numpy): config validation reads it while Snakemake plans the DAG.
The needs are what a query context must be able to supply:
- "probs": the current model's class probabilities for the candidates (and, for `cal`, for the
  labelled items);
- "embeddings": dense features of any pool item (the features the classifier head sees);
- "grad_embeddings": last-layer gradient embeddings (BADGE);
- "dropout": MC-dropout probabilities (a model with dropout layers: fine-tuning only);
- "perturb": probabilities of copies of the model with noise on the head's weights.
"""
from __future__ import annotations

NEEDS = frozenset({"probs", "embeddings", "grad_embeddings", "dropout", "perturb"})

STRATEGY_NEEDS: dict[str, frozenset[str]] = {
    "random": frozenset(),
    "least_confidence": frozenset({"probs"}),
    "entropy": frozenset({"probs"}),
    "margin": frozenset({"probs"}),
    "kmeans": frozenset({"embeddings"}),
    "coreset": frozenset({"embeddings"}),
    "badge": frozenset({"grad_embeddings"}),
    "bald": frozenset({"dropout"}),
    "cal": frozenset({"probs", "embeddings"}),
    "noise_stability": frozenset({"perturb"}),
    "typiclust": frozenset({"embeddings"}),
    "margin_kmeans": frozenset({"probs", "embeddings"}),
}

STRATEGY_DESCRIPTIONS: dict[str, str] = {
    "random": "uniformly random batch",
    "least_confidence": "lowest top-class probability",
    "entropy": "highest predictive entropy",
    "margin": "smallest gap between the two most probable classes (breaking ties)",
    "kmeans": "k-means of the candidates' embeddings into batch-size clusters, the item nearest "
              "each centroid (S3)",
    "coreset": "greedy k-center on embeddings, starting from the labelled set (S1)",
    "badge": "k-means++ seeding on last-layer gradient embeddings (Ash et al. 2020)",
    "bald": "mutual information between prediction and weights under MC dropout (fine-tuning)",
    "cal": "contrastive AL: mean KL divergence from the labelled k nearest neighbours' "
           "predictions (Margatina et al. 2021)",
    "noise_stability": "greedy k-center on the output change of noise-perturbed heads (S1)",
    "typiclust": "most typical item of the largest clusters without labels (cold start, "
                 "Hacohen et al. 2022)",
    "margin_kmeans": "batch-diverse uncertainty: the most uncertain items by margin, clustered "
                     "by weighted k-means, the item nearest each centroid (Zhdanov 2019)",
}

# What each training recipe kind can supply to a query context.
RECIPE_CAPABILITIES: dict[str, frozenset[str]] = {
    "logistic": frozenset({"probs", "embeddings", "grad_embeddings", "perturb"}),
    "finetune": NEEDS,
}


def strategy_names() -> list[str]:
    """Every strategy name, in registry order."""
    return list(STRATEGY_NEEDS)


def missing_needs(strategy: str, recipe_kind: str) -> frozenset[str]:
    """What `strategy` needs that a recipe of `recipe_kind` cannot supply."""
    return STRATEGY_NEEDS[strategy] - RECIPE_CAPABILITIES.get(recipe_kind, frozenset())
