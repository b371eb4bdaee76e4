"""SQLite response cache under every LLM executor, keyed by (backend, custom_id).

`custom_id` is the sha256 of the request body (requests.py), `backend` the identity of what
answers it (backend.py: kind family, base URL, the GGUF file's hash...), so two servers that
serve one model name never share answers. A cached line holds the response as the server sent
it, usage included; its cost is priced when it is used (annotate.py), from the reading
annotator's price table and executor kind, never from whoever filled the cache.

Only successful responses (HTTP 200 with a body) are kept: an error is not an answer, so a rerun
retries it, while nothing that was answered is ever sent again. Several processes (parallel
Snakemake jobs) may share one file: WAL journaling, a busy timeout, one short IMMEDIATE
transaction per write (`put` one line, `put_many` a whole downloaded batch file) and
`INSERT OR IGNORE` (the first answer wins) keep it consistent, and a process killed mid-write
leaves at most its own uncommitted transaction behind, which SQLite rolls back.

In-flight reservations (table `inflight`, see inflight.py) let jobs that share the file send
each request once: a job reserves what it is about to send; another job that needs the same
request waits for it and reads the answer. A reservation whose job died (its process is gone, or
its heartbeat older than the lease) is cleared.

Requests possibly billed without an answer in the cache (table `unanswered`) are recorded under
the label of the run they were sent for (the job's `owners.label`: one per annotator of the
annotate rule, one per annotator of each AL run; llmal.llm.fetch.run_label), never under whichever job
happens to notice them: sent attempts that timed out or lost their connection (`timeout`), 200s
whose body could not be read (`unreadable`), and a dead job's reservations that it had sent and
that have no answer in the cache when they are cleared (`lost_in_flight`). The rerun of that run
reports them (`unanswered(label)`) and, once its report is written, `settle`s them.

Cluster filesystems (`cache_mode: network`): SQLite's WAL needs shared memory between the
processes that open the file, so it is unsafe where jobs on several nodes share a `cache_dir` on
NFS or Lustre, and the POSIX locks SQLite's rollback journal relies on are unreliable there. In
network mode the file uses a rollback journal (`journal_mode = DELETE`), and every read and
write runs under a directory lock (netlock.py: `mkdir` is atomic on NFS and Lustre) on a
connection opened for it and closed after it: NFS's close-to-open consistency then shows each
job what the previous holder committed. Slower per call (milliseconds), safe across nodes.
All jobs sharing one cache must use the same mode.

Migration: a cache written before labels gets the column `owners.label` (reservations of its
jobs carry no label) and the table `unanswered`; its answers are kept. Caches of llmal versions
before backend identities have a table `responses` keyed by
custom_id alone, with the executor kind that filled it. Such a legacy answer is adopted by the
first backend of the same family (openai/openai_batch, vllm, local) that asks for it, moved into
`answers` under that backend, and so never paid for again, nor shared with a second server.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from llmal.llm.backend import FAMILY, file_sha256
from llmal.llm.executors.base import ResponseLine, compact_json
from llmal.llm.netlock import DirLock

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    backend   TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    line      TEXT NOT NULL,
    stored_at REAL NOT NULL,
    PRIMARY KEY (backend, custom_id)
);
CREATE TABLE IF NOT EXISTS inflight (
    backend   TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    owner     TEXT NOT NULL,
    sent      INTEGER NOT NULL DEFAULT 0,
    since     REAL NOT NULL,
    PRIMARY KEY (backend, custom_id)
);
CREATE INDEX IF NOT EXISTS inflight_by_owner ON inflight (owner);
CREATE TABLE IF NOT EXISTS owners (
    owner     TEXT PRIMARY KEY,
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    heartbeat REAL NOT NULL,
    label     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS unanswered (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    label     TEXT NOT NULL,      -- the run (or annotator) that sent the requests
    backend   TEXT NOT NULL,
    reason    TEXT NOT NULL,      -- timeout | unreadable | lost_in_flight
    n         INTEGER NOT NULL,
    at        REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS unanswered_by_label ON unanswered (label);
CREATE TABLE IF NOT EXISTS file_hashes (
    path      TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    sha256    TEXT NOT NULL
);
"""
LEGACY_TABLE = "responses"
CACHE_MODES = ("local", "network")
UNANSWERED_REASONS = ("timeout", "unreadable", "lost_in_flight")
LOOKUP_CHUNK = 500
LEASE_S = 120.0            # a job whose heartbeat is older than this is taken for dead
HOST = socket.gethostname()


@dataclass(frozen=True)
class CachedResponse:
    line: ResponseLine
    backend: str


def is_success(line: Any) -> bool:
    response = line.get("response") if isinstance(line, dict) else None
    return (isinstance(response, dict) and response.get("status_code") == 200
            and isinstance(response.get("body"), dict))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), LOOKUP_CHUNK):
        yield ids[start:start + LOOKUP_CHUNK]


class ResponseCache:
    """One connection per process; thread-safe for executors that store from worker threads."""

    def __init__(self, path: str | Path, timeout_s: float = 120.0, lease_s: float = LEASE_S,
                 mode: str = "local") -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache_mode must be one of {CACHE_MODES}, got {mode!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease_s = lease_s
        self.mode = mode
        self.timeout_s = timeout_s
        self.lost_in_flight = 0      # sent, unanswered requests of dead jobs this process cleared
        self.adopted_legacy = 0      # answers moved over from a pre-backend cache
        self._lock = threading.Lock()
        self._dirlock = DirLock(self.path.with_name(self.path.name + ".lock"), timeout_s=timeout_s)
        self._conn: sqlite3.Connection | None = None if mode == "network" else self._connect("WAL")
        with self._transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            if "label" not in {row[1] for row in db.execute("PRAGMA table_info(owners)")}:
                db.execute("ALTER TABLE owners ADD COLUMN label TEXT NOT NULL DEFAULT ''")
            self._legacy = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                      (LEGACY_TABLE,)).fetchone() is not None

    def _connect(self, journal: str) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=self.timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        # switching the journal mode ignores the busy timeout: two jobs opening a new cache at
        # once can get "database is locked" here, so retry until the timeout
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                conn.execute(f"PRAGMA journal_mode = {journal}")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.02)
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """The connection to use, held alone: this process's one connection under a thread lock
        (local mode), or a fresh one under the directory lock, closed after (network mode)."""
        with self._lock:
            if self._conn is not None:
                yield self._conn
                return
            with self._dirlock:
                conn = self._connect("DELETE")
                try:
                    yield conn
                finally:
                    conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._guard() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ answers
    def put(self, line: ResponseLine, backend: str) -> bool:
        """Store a successful response line; returns False (and stores nothing) for errors.

        Committed before returning, so a crash right after loses nothing that was paid for.
        """
        return self.put_many([line], backend) == 1

    def put_many(self, lines: Iterable[ResponseLine], backend: str) -> int:
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
                rows.append((backend, custom_id, compact_json(line), now))
        if not rows:
            return 0
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO answers (backend, custom_id, line, stored_at) "
                           "VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def get_many(self, custom_ids: Iterable[str], backend: str) -> dict[str, CachedResponse]:
        """The cached answers of `backend` among `custom_ids` (legacy answers adopted first)."""
        ids = list(dict.fromkeys(custom_ids))
        out: dict[str, CachedResponse] = {}
        with self._guard() as db:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for cid, text in db.execute(
                        f"SELECT custom_id, line FROM answers WHERE backend = ? AND custom_id IN ({marks})",
                        [backend, *chunk]).fetchall():
                    out[cid] = CachedResponse(json.loads(text), backend)
        if self._legacy:
            missing = [cid for cid in ids if cid not in out]
            if missing:
                out.update(self._adopt_legacy(missing, backend))
        return out

    def _adopt_legacy(self, ids: Sequence[str], backend: str) -> dict[str, CachedResponse]:
        family = backend.split(" ", 1)[0]
        kinds = [k for k, f in FAMILY.items() if f == family]
        if not kinds:
            return {}
        out: dict[str, CachedResponse] = {}
        kind_marks = ",".join("?" * len(kinds))
        with self._transaction() as db:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT custom_id, line FROM {LEGACY_TABLE} WHERE custom_id IN "
                                  f"({marks}) AND executor IN ({kind_marks})", [*chunk, *kinds]).fetchall()
                now = time.time()
                db.executemany("INSERT OR IGNORE INTO answers (backend, custom_id, line, stored_at) "
                               "VALUES (?, ?, ?, ?)", [(backend, cid, text, now) for cid, text in rows])
                db.executemany(f"DELETE FROM {LEGACY_TABLE} WHERE custom_id = ?", [(cid,) for cid, _ in rows])
                out.update({cid: CachedResponse(json.loads(text), backend) for cid, text in rows})
        self.adopted_legacy += len(out)
        return out

    def __contains__(self, custom_id: object) -> bool:
        """Whether any backend has an answer for `custom_id`."""
        with self._guard() as db:
            row = db.execute("SELECT 1 FROM answers WHERE custom_id = ?",
                                     (custom_id,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        with self._guard() as db:
            return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    # ------------------------------------------------------------------ reservations
    def register(self, owner: str, label: str = "") -> None:
        """A job that will reserve requests; `label`: the run it sends them for."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO owners (owner, host, pid, heartbeat, label) VALUES (?,?,?,?,?)",
                       (owner, HOST, os.getpid(), time.time(), label))

    def heartbeat(self, owner: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE owners SET heartbeat = ? WHERE owner = ?", (time.time(), owner))

    def _clear_dead(self, db: sqlite3.Connection) -> None:
        """Drop owners that are gone and their reservations (in the caller's transaction); the
        ones they had sent that got no answer are recorded under their run's label."""
        now = time.time()
        dead = [(owner, label) for owner, host, pid, beat, label in
                db.execute("SELECT owner, host, pid, heartbeat, label FROM owners").fetchall()
                if beat < now - self.lease_s or (host == HOST and not pid_alive(int(pid)))]
        for owner, label in dead:
            for backend, sent in db.execute(
                    "SELECT backend, COUNT(*) FROM inflight AS i WHERE owner = ? AND sent = 1 AND NOT EXISTS "
                    "(SELECT 1 FROM answers AS a WHERE a.backend = i.backend AND a.custom_id = i.custom_id) "
                    "GROUP BY backend", (owner,)).fetchall():
                self.lost_in_flight += int(sent)
                self._record(db, label, backend, "lost_in_flight", int(sent))
            db.execute("DELETE FROM inflight WHERE owner = ?", (owner,))
            db.execute("DELETE FROM owners WHERE owner = ?", (owner,))
        # reservations of owners never registered (cannot happen through inflight.py) are void
        db.execute("DELETE FROM inflight WHERE owner NOT IN (SELECT owner FROM owners)")

    # ------------------------------------------------------------------ possibly billed, unanswered
    @staticmethod
    def _record(db: sqlite3.Connection, label: str, backend: str, reason: str, n: int) -> None:
        if reason not in UNANSWERED_REASONS:
            raise ValueError(f"unknown reason {reason!r}; one of {UNANSWERED_REASONS}")
        if n > 0:
            db.execute("INSERT INTO unanswered (label, backend, reason, n, at) VALUES (?,?,?,?,?)",
                       (label, backend, reason, n, time.time()))

    def record_unanswered(self, label: str, backend: str, reason: str, n: int = 1) -> None:
        """`n` requests of run `label` possibly billed without an answer (committed at once)."""
        with self._transaction() as db:
            self._record(db, label, backend, reason, n)

    def unanswered(self, label: str) -> dict[int, tuple[str, int]]:
        """Run `label`'s records not settled yet, {id: (reason, n)}: its own and those of its
        killed earlier attempts (dead jobs are cleared first)."""
        with self._transaction() as db:
            self._clear_dead(db)
            rows = db.execute("SELECT id, reason, n FROM unanswered WHERE label = ?", (label,)).fetchall()
        return {int(i): (str(reason), int(n)) for i, reason, n in rows}

    def settle(self, ids: Iterable[int]) -> None:
        """Forget records that a written report shows."""
        rows = [(int(i),) for i in ids]
        if rows:
            with self._transaction() as db:
                db.executemany("DELETE FROM unanswered WHERE id = ?", rows)

    def reserve(self, custom_ids: Sequence[str], backend: str, owner: str) -> tuple[set[str], set[str]]:
        """Reserve the free ones of `custom_ids` for `owner`: (now ours, reserved by other jobs)."""
        ids = list(dict.fromkeys(custom_ids))
        now = time.time()
        with self._transaction() as db:
            self._clear_dead(db)
            db.executemany("INSERT OR IGNORE INTO inflight (backend, custom_id, owner, sent, since) "
                           "VALUES (?, ?, ?, 0, ?)", [(backend, cid, owner, now) for cid in ids])
            holders = self._holders(db, ids, backend)
        mine = {cid for cid, who in holders.items() if who == owner}
        return mine, set(holders) - mine

    def reserved_by_others(self, custom_ids: Sequence[str], backend: str, owner: str) -> set[str]:
        with self._transaction() as db:
            self._clear_dead(db)
            holders = self._holders(db, list(custom_ids), backend)
        return {cid for cid, who in holders.items() if who != owner}

    @staticmethod
    def _holders(db: sqlite3.Connection, ids: Sequence[str], backend: str) -> dict[str, str]:
        holders: dict[str, str] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            holders.update(db.execute(f"SELECT custom_id, owner FROM inflight WHERE backend = ? AND "
                                      f"custom_id IN ({marks})", [backend, *chunk]).fetchall())
        return holders

    def mark_sent(self, custom_ids: Sequence[str], backend: str, owner: str) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE inflight SET sent = 1 WHERE backend = ? AND custom_id = ? AND owner = ?",
                           [(backend, cid, owner) for cid in custom_ids])

    def release(self, owner: str, custom_ids: Sequence[str] | None = None, *, forget: bool = False) -> None:
        """Give up `owner`'s reservations (all of them by default; `forget`: the owner too)."""
        with self._transaction() as db:
            if custom_ids is None:
                db.execute("DELETE FROM inflight WHERE owner = ?", (owner,))
            else:
                db.executemany("DELETE FROM inflight WHERE owner = ? AND custom_id = ?",
                               [(owner, cid) for cid in custom_ids])
            if forget:
                db.execute("DELETE FROM owners WHERE owner = ?", (owner,))

    # ------------------------------------------------------------------ model files
    def file_hash(self, path: str) -> str:
        """sha256 of a (large) model file, computed once per (path, size, mtime)."""
        real = os.path.realpath(path)
        st = os.stat(real)
        with self._guard() as db:
            row = db.execute("SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path = ?",
                                     (real,)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return str(row[2])
        digest = file_sha256(real)
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, sha256) VALUES (?,?,?,?)",
                       (real, st.st_size, st.st_mtime_ns, digest))
        return digest

    def integrity_ok(self) -> bool:
        with self._guard() as db:
            return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def journal_mode(self) -> str:
        with self._guard() as db:
            return str(db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
