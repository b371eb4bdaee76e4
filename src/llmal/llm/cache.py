"""SQLite response cache under every LLM executor, keyed by custom_id (hash of the request body).

Only successful responses (HTTP 200 with a body) are kept: an error is not an answer, so a rerun
retries it, while nothing that was answered is ever sent again. Several processes (parallel
Snakemake jobs) may share one file: WAL journaling, a busy timeout, one short IMMEDIATE
transaction per write (`put` one line, `put_many` a whole downloaded batch file) and
`INSERT OR IGNORE` (the first answer wins) keep it consistent, and a process killed mid-write
leaves at most its own uncommitted transaction behind, which SQLite rolls back.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .executors.base import ResponseLine, compact_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    custom_id TEXT PRIMARY KEY,
    line      TEXT NOT NULL,
    executor  TEXT NOT NULL,
    stored_at REAL NOT NULL
)
"""
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class CachedResponse:
    line: ResponseLine
    executor: str   # kind of executor that produced it (cost: the batch discount applies or not)


def is_success(line: Any) -> bool:
    response = line.get("response") if isinstance(line, dict) else None
    return (isinstance(response, dict) and response.get("status_code") == 200
            and isinstance(response.get("body"), dict))


class ResponseCache:
    """One connection per process; thread-safe for executors that store from worker threads."""

    def __init__(self, path: str | Path, timeout_s: float = 120.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(SCHEMA)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def put(self, line: ResponseLine, executor: str) -> bool:
        """Store a successful response line; returns False (and stores nothing) for errors.

        Committed before returning, so a crash right after loses nothing that was paid for.
        """
        return self.put_many([line], executor) == 1

    def put_many(self, lines: Iterable[ResponseLine], executor: str) -> int:
        """Store the successful lines among `lines` in one transaction; returns how many.

        All or nothing: committed (one fsync) before returning, or rolled back whole. Error
        lines are skipped; a line without a custom_id fails the call before anything is written.
        """
        rows: list[tuple[str, str, str, float]] = []
        now = time.time()
        for line in lines:
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(custom_id, str) or not custom_id:
                raise ValueError(f"response line without a custom_id: {str(line)[:200]}")
            if is_success(line):
                rows.append((custom_id, compact_json(line), executor, now))
        if not rows:
            return 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO responses (custom_id, line, executor, stored_at) "
                    "VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(rows)

    def get_many(self, custom_ids: Iterable[str]) -> dict[str, CachedResponse]:
        ids = list(dict.fromkeys(custom_ids))
        out: dict[str, CachedResponse] = {}
        with self._lock:
            for start in range(0, len(ids), LOOKUP_CHUNK):
                chunk = ids[start:start + LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT custom_id, line, executor FROM responses WHERE custom_id IN ({marks})",
                    chunk).fetchall()
                for cid, text, executor in rows:
                    out[cid] = CachedResponse(json.loads(text), executor)
        return out

    def __contains__(self, custom_id: object) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM responses WHERE custom_id = ?",
                                     (custom_id,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
