"""What text classification offers and accepts, as data (read while Snakemake plans: nothing heavy here)."""
from llmal.tasks.base import Capabilities

CAPABILITIES = Capabilities(
    item_noun="items",
    budget_units=("labels", "usd"),
    description="text classification",
    data_noun="texts with class labels",
    dataset_kinds=("file", "gahd"),
    demo_variants=("hostility", "relation"),
    downloaded=("gahd",),
    learner_noun="a classifier",
    learner_does="classifies texts",
    recipe_kinds=("logistic", "finetune"),
    samplers=None,                    # full and the strategy registry (llmal.strategies.registry)
    samplers_score="class probabilities and embeddings",
    own_keys=(
        ("annotators.*.error", "class-conditional noise on a text's label (task ner: entity_error)"),
        ("annotators.*.topic_error", "topic-conditional noise on a text's label (task ner: entity_error)"),
        ("annotators.*.confidence", "a simulated confidence in a text's label (task ner: none)"),
        ("labels.positive", "the positive class of a binary text classification (task ner scores "
                            "entities of every type)"),
    ),
)
