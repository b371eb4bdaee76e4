"""What named-entity recognition offers, as data (read while Snakemake plans: nothing heavy here)."""
from llmal.tasks.base import Capabilities

CAPABILITIES = Capabilities(item_noun="sentences", budget_units=("labels", "usd", "tokens"), entity_level=True)
