"""Stage 4, results: tables as data (summary, comparisons, confusion, agreement, statistics), built from the run directories."""
