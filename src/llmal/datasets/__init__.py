"""Toolkit: read dataset files record by record, map columns, download by checksum, validate, split pool/dev/test."""
