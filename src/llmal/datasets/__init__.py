"""Toolkit: read a dataset file record by record (CSV/TSV/JSONL/JSON/Parquet), map its columns onto the items table, download once by checksum, validate and split items into pool/dev/test."""
