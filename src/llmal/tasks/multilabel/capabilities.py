"""What multi-label classification offers and accepts, as data (read while Snakemake plans: nothing heavy here)."""
from llmal.tasks.base import Capabilities

CAPABILITIES = Capabilities(
    item_noun="items",
    budget_units=("labels", "usd"),
    # predictions.parquet has one row per (test item, label): pred/gold = the label, or the last
    # label name ("none") when absent, so the per-class FP/FN tables are per label
    entity_level=True,
    description="multi-label text classification",
    data_noun="texts with label sets",
    dataset_kinds=("file",),
    demo_variants=("multilabel",),
    checks_data_by_prepare=True,      # llmal check reads label sets through the task's prepare
    learner_noun="a multi-label classifier",   # one-vs-rest logistic, or a fine-tuned sigmoid head
    learner_does="gives each text a set of labels",
    recipe_kinds=("logistic", "finetune"),   # one-vs-rest logistic head; encoder with a sigmoid head
    class_weights=False,    # a finetune recipe's class_weight: refused (the logistic head's own is unaffected)
    training_options=(),
    # llmal.tasks.multilabel.strategies.MULTILABEL_STRATEGIES after the `full` schedule
    samplers=("full", "random", "entropy", "max_margin", "kmeans", "coreset"),
    samplers_score="per-label probabilities",
    mixture_methods=("majority", "mean", "dawid_skene", "learned"),
    mixture_refusal="a mixture of multi-label annotators aggregates per label (method: majority, mean, dawid_skene or learned)",
    label_keys=(("label_error", "label"),),
    own_keys=(
        ("annotators.*.label_error", "per-label false-positive and false-negative rates (task multilabel)"),
        ("annotators.*.cost_unit", "human cost per item or per label decision (task multilabel)"),
        ("annotators.*.label_sep", "the separator of a precomputed label list (task multilabel)"),
        ("dataset.label_sep", "the separator of a label-list column (task multilabel)"),
        ("recipes.*.threshold", "the decision threshold of every label (task multilabel)"),
        ("recipes.*.tune_thresholds", "per-label thresholds tuned on dev labels (task multilabel)"),
    ),
    summary_columns=(
        ("f1_micro", "F1 (micro)", 3, "max"), ("f1_macro", "F1 (macro)", 3, "max"),
        ("hamming_loss", "Hamming loss", 3, "min"), ("subset_accuracy", "Subset accuracy", 3, "max"),
        ("f1_{label}", "F1 ({label})", 3, "max"),
        ("fp", "FP (labels)", 1, "min"), ("fn", "FN (labels)", 1, "min"),
        ("n_labels", "Items", 0, None), ("n_train", "Trained on", 0, None),
        ("cost_total", "Cost ($)", None, "min"),
    ),
    metrics=("f1_micro", "precision_micro", "recall_micro", "hamming_loss", "subset_accuracy",
             "dev_f1_macro"),
    # one Bernoulli per label, not one class distribution per item: the stop-set criteria's
    # entropy and kappa are defined over the latter, so only the dev-F1 plateau applies
    stop_criteria=("dev_f1_plateau",),
)
