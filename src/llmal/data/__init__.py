"""Stage 1, data: prepare = the task reads the dataset -> split -> validate, into the items and split tables."""
