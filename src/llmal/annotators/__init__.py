"""Annotators: every kind writes the same annotation table (llmal.tables.ANNOTATION_COLUMNS)."""
