"""What named-entity recognition offers and accepts, as data (read while Snakemake plans: nothing heavy here)."""
from llmal.tasks.base import Capabilities

TOKEN_BUDGET = ("a token budget counts the tokens of sentences (for classification use budget_labels "
                "or budget_usd)")

CAPABILITIES = Capabilities(
    item_noun="sentences",
    budget_units=("labels", "usd", "tokens"),
    entity_level=True,
    description="sequence labelling",
    data_noun="sentences with entity tags",
    dataset_kinds=("conll", "masakhaner"),
    demo_variants=("ner",),
    downloaded=("masakhaner",),
    checks_data_by_prepare=True,
    learner_noun="a tagger",
    learner_does="tags sentences",
    recipe_kinds=("crf", "finetune"),      # a tagger on token features; token classification
    class_weights=False,
    training_options=("reweight",),
    # llmal.tasks.ner.strategies.SEQUENCE_STRATEGIES after the `full` schedule
    samplers=("full", "random", "mean_token_entropy", "total_token_entropy", "least_confidence",
              "mnlp", "kmeans"),
    samplers_score="tag sequences",
    mixture_methods=("majority",),
    mixture_refusal=("a mixture of sentence annotators (task ner) aggregates by entity-level majority "
                     "vote only (method: majority)"),
    label_keys=(("entity_error", "entity type"),),
    own_keys=(
        ("annotators.*.cost_per_token", "a price per token of a sentence"),
        ("annotators.*.entity_error", "noise on the entities of a sentence (classification: error)"),
        ("annotators.*.sentences_per_prompt", "sentences sent in one request"),
        ("al.budget_tokens", TOKEN_BUDGET),
        ("conditions.*.al.budget_tokens", TOKEN_BUDGET),
        ("aggregate.token_budgets", "token budgets count the tokens of sentences"),
    ),
    metrics=("f1_micro", "precision_micro", "recall_micro", "dev_f1_macro"),
    # a tagger's probabilities are per token, not one row per sentence: no stop-set criteria
    stop_criteria=("dev_f1_plateau",),
)
