"""Rule embed: items -> frozen features of one encoder."""
import pandas as pd

from llmal.models.encoders import encode, fit_mask, save_features
from llmal.workflow import logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    items = pd.read_parquet(sm.input.item_table)
    ids = items["id"].astype(str).tolist()
    fit_on = fit_mask(ids, pd.read_parquet(sm.input.split_table), sm.params.spec)
    features = encode(ids, items["text"].tolist(), sm.params.spec, fit_on)
    if fit_on is not None:
        print(f"{sm.wildcards.encoder}: fitted on {sum(fit_on)} pool+dev texts (not test)")
    print(f"{sm.wildcards.encoder}: {features.X.shape[0]} x {features.X.shape[1]} features")
    save_features(features, sm.output[0])
