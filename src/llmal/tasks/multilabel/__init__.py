"""Multi-label text classification (task: multilabel): an item carries a set of labels."""
