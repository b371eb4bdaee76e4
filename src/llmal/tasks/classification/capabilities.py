"""What text classification offers, as data (read while Snakemake plans: nothing heavy here)."""
from llmal.tasks.base import Capabilities

CAPABILITIES = Capabilities(item_noun="items", budget_units=("labels", "usd"))
