"""Text classification: one class per item (binary with a positive class, or multi-class)."""
