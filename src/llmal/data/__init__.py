"""The data stage: the synthetic demo, dataset loaders, validation and splits."""
