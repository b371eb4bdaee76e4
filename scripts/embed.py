"""Rule embed: items -> frozen features of one encoder."""
import pandas as pd

from llmal.encoders import encode, save_features
from llmal.workflow import logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    items = pd.read_parquet(sm.input.item_table)
    features = encode(items["id"].tolist(), items["text"].tolist(), sm.params.spec)
    print(f"{sm.wildcards.encoder}: {features.X.shape[0]} x {features.X.shape[1]} features")
    save_features(features, sm.output[0])
