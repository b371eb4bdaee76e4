"""Failed LLM requests are retried by a plain rerun: how Snakemake learns that a table has some.

Next to each annotation table the annotate rule keeps `<table>.retry` (JSON): a `token` that
grows by one every time a job ends with rows that failed for a transient reason (timeouts,
connection errors, 429/5xx, expired batches, a server outage), and those rows' ids. The annotate
rule has the token as a param, so the next `snakemake` sees a changed param (a default rerun
trigger) and runs the job again; answered requests come from the response cache, so exactly the
failed rows are sent. A job that ends without transient failures leaves the token as it is,
and the one after it finds nothing to do. Rows that failed permanently (HTTP 4xx other than
408/409/429: the request itself is wrong) do not rerun the job by themselves; they are retried
whenever it runs.

Light on imports: the Snakefile reads tokens while it plans.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

SUFFIX = ".retry"
_TRANSIENT_4XX = {"http_408", "http_409", "http_429"}
_TRANSIENT_PREFIXES = ("http_5", "batch_", "timeout", "connection", "missing", "vllm_", "local_",
                       "invalid_response")


def retry_path(annotation_path: str | Path) -> Path:
    return Path(str(annotation_path) + SUFFIX)


def read_token(annotation_path: str | Path) -> int:
    """The retry token of an annotation table (0 when it never had transient failures)."""
    path = retry_path(annotation_path)
    try:
        return int(json.loads(path.read_text(encoding="utf-8")).get("token", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def is_transient(code: str) -> bool:
    """Whether a failed row's error code is worth another attempt without changing anything.

    Named API error codes (invalid_request_error, unsupported_parameter...) come with a 4xx."""
    return code in _TRANSIENT_4XX or code.startswith(_TRANSIENT_PREFIXES)


def failure_code(raw: str) -> str:
    """The error code a failed row's `raw` text starts with ("code: message")."""
    return raw.split(":", 1)[0].strip()


def record_failures(annotation_path: str | Path, failed: Mapping[str, str]) -> int:
    """Update `<table>.retry` after a job; `failed`: item id -> raw text of its failed row.

    Returns the number of transiently failed rows (the token grew if there were any)."""
    transient = sorted(i for i, raw in failed.items() if is_transient(failure_code(raw)))
    path = retry_path(annotation_path)
    token = read_token(annotation_path)
    if not transient and not path.exists():
        return 0
    state = {"token": token + 1 if transient else token, "transient_failures": transient,
             "permanent_failures": sorted(set(failed) - set(transient))}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return len(transient)
