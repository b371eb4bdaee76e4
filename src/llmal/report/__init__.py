"""Stage 5, the report: rendering only (HTML page, Markdown/LaTeX/HTML table text, figures)."""
