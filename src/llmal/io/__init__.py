"""Toolkit: read a user's table file record by record (CSV/TSV/JSONL/JSON/Parquet), map its columns, download once by checksum."""
