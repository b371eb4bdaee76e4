"""The `openai_batch` executor: the Files + Batches API (half price, answers within 24 h).

run(requests, store):
  1. resume: every batch persisted in `state_dir` that is not collected yet and holds any of the
     requested custom_ids is polled again, never resubmitted (a pipeline killed while waiting
     pays nothing twice). A chunk persisted without a batch id (killed between creating the
     batch and saving its id) is looked up on the server by its metadata before anything is
     created again; if it never became a batch, it is submitted now under its own key (its
     upload found by file name when it got that far).
  2. submit: the requests no live batch covers are split into chunks (<= max_requests_per_batch
     lines, <= max_bytes_per_batch bytes); each chunk is persisted before it is uploaded and
     its batch created, and again with the file and batch ids.
     Creating is idempotent: the client's own retries are off for the two POSTs (a 500 or a
     lost connection may come after the server made the file or the batch), and before each
     try after the first the server is asked whether the last one went through: the batch is
     found by the chunk key in its metadata, the upload by its file name
     (`llmal-<chunk key>.jsonl`). 429, 408/409, 5xx and connection errors are tried again with
     backoff, at most `max_retries` times; a batch is never created twice for one chunk.
  3. poll every `poll_interval` seconds until each batch ends (completed, failed, expired,
     cancelled); download its output and error files and hand all their lines to the store at
     once (`store_all`: one cache transaction); only after that is the batch marked collected,
     so a process killed in between collects it again on resume instead of losing answers.
     Requests a batch did not do (expired, cancelled, batch failed, 429/5xx lines) go into a
     new batch, up to `max_batch_attempts` batches per request; then they get error lines.

State: `<state_dir>/openai_batches.sqlite` (tables chunks, chunk_items). One process at a time
works on a state dir (a file lock); give each annotator its own state dir.
"""
from __future__ import annotations

import json
import logging
import random
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import openai
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from llmal.llm.executors.base import RequestLine, ResponseLine, Store, compact_json, error_line, store_all
from llmal.llm.executors.openai_common import (
    ExecutorConfigError,
    api_error_message,
    authentication_failed,
    is_transient_api_error,
    redact,
    resolve_api_key,
    retry_after_seconds,
    spec_number,
)

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_BATCH = 50_000
MAX_BYTES_PER_BATCH = 200_000_000          # the Files API limit is 200 MB
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
# error codes of requests the batch did not do: worth another batch
RESUBMIT_CODES = frozenset({"batch_expired", "batch_cancelled", "batch_failed", "batch_not_run"})
STATE_FILE = "openai_batches.sqlite"
LOCK_FILE = "openai_batches.lock"
METADATA_KEY = "llmal_chunk"
LOOKBACK_S = 3600.0      # a chunk's file or batch is no older than the chunk, give or take clock skew
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    chunk_key     TEXT PRIMARY KEY,
    server        TEXT NOT NULL,      -- base_url, or 'openai'
    endpoint      TEXT NOT NULL,
    attempt       INTEGER NOT NULL,   -- 1 for a request's first batch, 2 for its resubmission...
    n_requests    INTEGER NOT NULL,
    input_file_id TEXT,
    batch_id      TEXT,
    status        TEXT NOT NULL,      -- planned | uploaded | the server's batch status
    collected     INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunk_items (
    chunk_key TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    PRIMARY KEY (chunk_key, custom_id)
);
CREATE INDEX IF NOT EXISTS chunk_items_by_custom_id ON chunk_items (custom_id);
"""


@dataclass
class Chunk:
    """One batch input file's worth of requests, as persisted."""
    key: str
    endpoint: str
    attempt: int
    custom_ids: list[str]
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str = "planned"
    created_at: float = 0.0


@dataclass
class BatchStats:
    batches_created: int = 0
    batches_resumed: int = 0
    batches_adopted: int = 0          # found on the server by metadata (after a crash, or a failed create)
    uploads_adopted: int = 0          # input files found on the server by name instead of uploaded again
    create_retries: int = 0           # upload or create tries after a transient error
    resubmitted: int = 0              # requests sent in a later batch
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    batch_ids: list[str] = field(default_factory=list)


class BatchState:
    """The SQLite file in state_dir that remembers chunks and their batch ids."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, server: str, chunk: Chunk) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO chunks (chunk_key, server, endpoint, attempt, n_requests, input_file_id, "
                "batch_id, status, collected, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,0,?,?)",
                (chunk.key, server, chunk.endpoint, chunk.attempt, len(chunk.custom_ids),
                 chunk.input_file_id, chunk.batch_id, chunk.status, chunk.created_at, chunk.created_at))
            self.db.executemany("INSERT INTO chunk_items (chunk_key, custom_id) VALUES (?, ?)",
                                ((chunk.key, cid) for cid in chunk.custom_ids))

    def update(self, chunk: Chunk, *, collected: bool = False) -> None:
        self.db.execute(
            "UPDATE chunks SET input_file_id=?, batch_id=?, status=?, collected=?, updated_at=? "
            "WHERE chunk_key=?",
            (chunk.input_file_id, chunk.batch_id, chunk.status, int(collected), time.time(), chunk.key))

    def live(self, server: str) -> list[Chunk]:
        rows = self.db.execute(
            "SELECT chunk_key, endpoint, attempt, input_file_id, batch_id, status, created_at FROM chunks "
            "WHERE server=? AND collected=0 ORDER BY created_at", (server,)).fetchall()
        chunks = []
        for key, endpoint, attempt, input_file_id, batch_id, status, created_at in rows:
            ids = [r[0] for r in self.db.execute(
                "SELECT custom_id FROM chunk_items WHERE chunk_key=? ORDER BY rowid", (key,))]
            chunks.append(Chunk(key, endpoint, attempt, ids, input_file_id, batch_id, status, created_at))
        return chunks


class OpenAIBatchExecutor:
    name = "openai_batch"

    def __init__(self, spec: Mapping[str, Any], *, state_dir: Path) -> None:
        self.base_url: str | None = spec.get("base_url") or None
        self._api_key = resolve_api_key(spec)
        self._spec = {k: spec.get(k) for k in ("base_url", "api_key_env")}
        self.state_dir = Path(state_dir)
        self.poll_interval = spec_number(spec, "poll_interval", 30.0, minimum=0.01)
        self.max_requests = int(spec_number(spec, "max_requests_per_batch", MAX_REQUESTS_PER_BATCH, minimum=1))
        self.max_bytes = int(spec_number(spec, "max_bytes_per_batch", MAX_BYTES_PER_BATCH, minimum=1))
        self.max_attempts = int(spec_number(spec, "max_batch_attempts", 3, minimum=1))
        self.max_retries = int(spec_number(spec, "max_retries", 6))
        self.timeout = spec_number(spec, "timeout", 600.0, minimum=0.001)
        self.completion_window = str(spec.get("completion_window") or "24h")
        if self.max_requests > MAX_REQUESTS_PER_BATCH:
            raise ExecutorConfigError(
                f"annotator key 'max_requests_per_batch' is {self.max_requests}; the Batch API takes at "
                f"most {MAX_REQUESTS_PER_BATCH}")
        self.server = self.base_url.rstrip("/") if self.base_url else "openai"
        self.stats = BatchStats()

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBatchExecutor(base_url={self.base_url!r}, state_dir={str(self.state_dir)!r})"

    # ------------------------------------------------------------------ public
    def run(self, requests: Sequence[RequestLine], store: Store) -> None:
        """Answer `requests` through batches; `store` gets each batch's lines once downloaded."""
        by_id: dict[str, RequestLine] = {}
        for request in requests:
            by_id.setdefault(str(request["custom_id"]), request)
        if not by_id:
            return
        started = time.monotonic()
        self.stats = BatchStats()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.state_dir / LOCK_FILE))
        try:
            lock.acquire(timeout=5)
        except Timeout:
            log.warning("openai_batch: another process works on %s; waiting for it", self.state_dir)
            lock.acquire()
        try:
            # another job may have answered some of them while this one waited for the lock
            known = getattr(store, "already_cached", None)
            answered = known(list(by_id)) if callable(known) else set()
            if answered:
                log.info("openai_batch: %d of the %d requests were answered by another job; not sent",
                         len(answered), len(by_id))
                by_id = {cid: r for cid, r in by_id.items() if cid not in answered}
            if not by_id:
                return
            client = openai.OpenAI(api_key=self._api_key, base_url=self.base_url,
                                   max_retries=self.max_retries, timeout=self.timeout)
            with client, closing(BatchState(self.state_dir / STATE_FILE)) as state:
                try:
                    self._run(client, state, by_id, store)
                except openai.AuthenticationError as exc:
                    raise authentication_failed(self._spec, api_error_message(exc), self._api_key) from None
                except openai.APIError as exc:
                    raise RuntimeError(self._clean(
                        f"openai_batch: {type(exc).__name__}: {exc}; the batches are remembered in "
                        f"{self.state_dir / STATE_FILE}, rerun to resume")) from None
        finally:
            lock.release()
            self.stats.seconds = time.monotonic() - started
        log.info("openai_batch: %d ok, %d errors; batches created %d, resumed %d, adopted %d; "
                 "uploads found on the server %d; create or upload tries after an error %d; "
                 "%d requests resubmitted; %.1f s", self.stats.ok, self.stats.errors,
                 self.stats.batches_created, self.stats.batches_resumed, self.stats.batches_adopted,
                 self.stats.uploads_adopted, self.stats.create_retries, self.stats.resubmitted,
                 self.stats.seconds)

    # ------------------------------------------------------------------ the run
    def _run(self, client: openai.OpenAI, state: BatchState, by_id: dict[str, RequestLine],
             store: Store) -> None:
        wanted = set(by_id)
        active: list[Chunk] = []
        for chunk in state.live(self.server):
            if wanted.isdisjoint(chunk.custom_ids):
                continue  # another request set's batch: left for the run that wants it
            if chunk.batch_id is None:
                if not self._adopt(client, state, chunk, by_id):
                    continue  # never reached the server: its requests go into a new chunk
            else:
                self.stats.batches_resumed += 1
            active.append(chunk)
        covered = {cid for chunk in active for cid in chunk.custom_ids}
        if covered & wanted:
            log.info("openai_batch: resuming %d batches holding %d of the %d requests",
                     len(active), len(covered & wanted), len(wanted))
        fresh = [by_id[cid] for cid in by_id if cid not in covered]
        active += self._plan_and_submit(client, state, fresh, attempt=1, by_id=by_id, store=store)

        total = sum(len(c.custom_ids) for c in active)
        done_before = 0
        progress = tqdm(total=total, desc="openai_batch", unit="req", mininterval=1.0)
        try:
            while active:
                running = 0
                still: list[Chunk] = []
                for chunk in active:
                    try:
                        batch = client.batches.retrieve(chunk.batch_id)  # type: ignore[arg-type]
                    except openai.NotFoundError:
                        # another project's key, or deleted: nothing can be collected from it
                        log.warning("openai_batch: batch %s is unknown to %s; its requests are planned "
                                    "again", chunk.batch_id, self.server)
                        chunk.status = "lost"
                        state.update(chunk, collected=True)
                        again = [by_id[c] for c in chunk.custom_ids if c in by_id]
                        done_before += len(chunk.custom_ids) - len(again)
                        still += self._plan_and_submit(client, state, again, attempt=chunk.attempt,
                                                       by_id=by_id, store=store)
                        continue
                    if batch.status != chunk.status:
                        chunk.status = batch.status
                        state.update(chunk)
                    if batch.status not in TERMINAL:
                        counts = batch.request_counts
                        running += (counts.completed + counts.failed) if counts else 0
                        still.append(chunk)
                        continue
                    retry_ids = self._collect(client, state, chunk, batch, by_id, store)
                    done_before += len(chunk.custom_ids) - len(retry_ids)
                    if retry_ids:
                        self.stats.resubmitted += len(retry_ids)
                        new = self._plan_and_submit(client, state, [by_id[c] for c in retry_ids],
                                                    attempt=chunk.attempt + 1, by_id=by_id, store=store)
                        still += new
                progress.n = min(progress.total, done_before + running)
                progress.set_postfix(batches=len(still), refresh=False)
                progress.refresh()
                active = still
                if active:
                    time.sleep(self.poll_interval)
        finally:
            progress.close()

    def _plan_and_submit(self, client: openai.OpenAI, state: BatchState, requests: list[RequestLine], *,
                         attempt: int, by_id: dict[str, RequestLine], store: Store) -> list[Chunk]:
        chunks: list[Chunk] = []
        for endpoint, lines in _group_by_url(requests).items():
            for ids in self._split(lines, store):
                chunk = Chunk(key=uuid.uuid4().hex, endpoint=endpoint, attempt=attempt,
                              custom_ids=ids, created_at=time.time())
                state.add(self.server, chunk)           # persisted before anything is sent
                self._submit(client, state, chunk, by_id)
                chunks.append(chunk)
        return chunks

    def _split(self, lines: list[tuple[str, bytes]], store: Store) -> Iterator[list[str]]:
        ids: list[str] = []
        size = 0
        for custom_id, data in lines:
            if len(data) > self.max_bytes:
                self._store(store, error_line(custom_id, "request_too_large",
                                              f"request line is {len(data)} bytes, above max_bytes_per_batch "
                                              f"({self.max_bytes})"))
                continue
            if ids and (len(ids) >= self.max_requests or size + len(data) > self.max_bytes):
                yield ids
                ids, size = [], 0
            ids.append(custom_id)
            size += len(data)
        if ids:
            yield ids

    def _adopt(self, client: openai.OpenAI, state: BatchState, chunk: Chunk,
               by_id: dict[str, RequestLine]) -> bool:
        """A chunk persisted without batch id: find its batch on the server; failing that, submit
        it now when this run asks for all its requests (its upload is looked up first), else
        drop it (the requests asked for go into a new chunk)."""
        found = self._find_batch_by_metadata(client, chunk)
        if found is not None:
            chunk.input_file_id = found.input_file_id
            self._record_batch(state, chunk, found, adopted=True)
            log.info("openai_batch: found batch %s of chunk %s on the server", found.id, chunk.key)
            return True
        if all(cid in by_id for cid in chunk.custom_ids):
            log.info("openai_batch: chunk %s never became a batch; submitting it now", chunk.key)
            self._submit(client, state, chunk, by_id, resumed=True)
            return True
        chunk.status = "abandoned"
        state.update(chunk, collected=True)
        log.info("openai_batch: chunk %s never became a batch; its requests are planned again", chunk.key)
        return False

    def _submit(self, client: openai.OpenAI, state: BatchState, chunk: Chunk,
                by_id: dict[str, RequestLine], *, resumed: bool = False) -> None:
        """Upload the chunk's input file and create its batch, persisting each id at once.

        Neither POST is repeated blindly (module docstring): `resumed` (a chunk of a killed
        run) looks for its file on the server before the first upload as well."""
        once = client.with_options(max_retries=0)
        if chunk.input_file_id is None:
            name = f"llmal-{chunk.key}.jsonl"
            content = b"".join(_line_bytes(by_id[cid]) for cid in chunk.custom_ids)
            uploaded, found = self._create_once(
                "upload", chunk, lambda: self._find_file_by_name(once, name, chunk),
                lambda: once.files.create(file=(name, content, "application/jsonl"), purpose="batch"),
                look_first=resumed)
            self.stats.uploads_adopted += found
            chunk.input_file_id = uploaded.id
            chunk.status = "uploaded"
            state.update(chunk)
        batch, found = self._create_once(
            "batch create", chunk, lambda: self._find_batch_by_metadata(once, chunk),
            lambda: once.batches.create(
                input_file_id=chunk.input_file_id, endpoint=chunk.endpoint,  # type: ignore[arg-type]
                completion_window=self.completion_window,  # type: ignore[arg-type]
                metadata={METADATA_KEY: chunk.key, "llmal_attempt": str(chunk.attempt)}))
        self._record_batch(state, chunk, batch, adopted=found)
        log.info("openai_batch: %s batch %s (%d requests, attempt %d)", "found" if found else "created",
                 batch.id, len(chunk.custom_ids), chunk.attempt)

    def _record_batch(self, state: BatchState, chunk: Chunk, batch: Any, *, adopted: bool) -> None:
        chunk.batch_id, chunk.status = batch.id, batch.status
        state.update(chunk)
        if adopted:
            self.stats.batches_adopted += 1
        else:
            self.stats.batches_created += 1
        self.stats.batch_ids.append(batch.id)

    def _create_once(self, what: str, chunk: Chunk, find: Callable[[], T | None], create: Callable[[], T],
                     *, look_first: bool = False) -> tuple[T, bool]:
        """`create()` at most once per chunk: (the object, whether it was found instead).

        After a transient failure (and before the first try when `look_first`) `find()` asks
        the server whether the object exists already; a failed look-up is retried the same way."""
        attempt = 0
        while True:
            try:
                if attempt or look_first:
                    found = find()
                    if found is not None:
                        return found, True
                return create(), False
            except openai.APIError as exc:
                if not is_transient_api_error(exc) or attempt >= self.max_retries:
                    raise
                wait = self._backoff(attempt, exc)
                log.warning("openai_batch: %s of chunk %s failed (%s); looking it up on the server "
                            "before trying again in %.2f s", what, chunk.key,
                            self._clean(f"{type(exc).__name__}: {exc}"), wait)
                self.stats.create_retries += 1
                attempt += 1
                time.sleep(wait)

    def _backoff(self, attempt: int, exc: BaseException) -> float:
        response = getattr(exc, "response", None)
        asked = retry_after_seconds(response.headers) if response is not None else None
        if asked is not None:
            return min(asked, 60.0)
        ceiling = min(60.0, min(1.0, self.poll_interval) * 2.0**attempt)
        return ceiling * (0.5 + 0.5 * random.random())

    def _find_batch_by_metadata(self, client: openai.OpenAI, chunk: Chunk) -> Any | None:
        return _newest_match(client.batches.list(limit=100),
                             lambda b: (b.metadata or {}).get(METADATA_KEY) == chunk.key,
                             chunk.created_at - LOOKBACK_S)

    def _find_file_by_name(self, client: openai.OpenAI, name: str, chunk: Chunk) -> Any | None:
        """The chunk's upload, if the server lists files; None means upload (again): a second
        copy of a file costs nothing, unlike a second batch."""
        try:
            return _newest_match(client.files.list(purpose="batch", limit=100, order="desc"),
                                 lambda f: f.filename == name and getattr(f, "status", None) != "error",
                                 chunk.created_at - LOOKBACK_S)
        except openai.APIStatusError as exc:
            if exc.status_code in (404, 405, 501):      # a server that cannot list files
                return None
            raise

    def _collect(self, client: openai.OpenAI, state: BatchState, chunk: Chunk, batch: Any,
                 by_id: dict[str, RequestLine], store: Store) -> list[str]:
        """Store the finished batch's lines; return the custom_ids to put in another batch.

        Every line of the batch goes to the store in one `store_all` call, before the chunk is
        marked collected: until then a resumed run polls and downloads the batch again.
        """
        members = set(chunk.custom_ids)
        lines_out: list[ResponseLine] = []
        seen: set[str] = set()
        retry: dict[str, tuple[str, str]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            text = client.files.content(file_id).text
            for number, raw in enumerate(text.splitlines(), start=1):
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    log.warning("openai_batch: line %d of file %s (batch %s) is not JSON; skipped",
                                number, file_id, batch.id)
                    continue
                custom_id = str(line.get("custom_id"))
                if custom_id not in members or custom_id in seen:
                    log.warning("openai_batch: batch %s answered unknown or repeated custom_id %s; skipped",
                                batch.id, custom_id)
                    continue
                seen.add(custom_id)
                outcome = _classify(line)
                if custom_id not in by_id:
                    # answered in an earlier run (cached), or no longer asked for: an answer was
                    # paid for all the same, so it goes to the cache for the run that asks again
                    if outcome is None:
                        lines_out.append(_normalised_ok(line))
                    continue
                if outcome is None:
                    lines_out.append(_normalised_ok(line))
                elif outcome[0] == "retry":
                    retry[custom_id] = (outcome[1], outcome[2])
                else:
                    lines_out.append(error_line(custom_id, outcome[1], self._clean(outcome[2])) |
                                     {"id": line.get("id")})
        reason = f"batch_{batch.status}"
        message = _batch_errors(batch) or f"batch {batch.id} ended {batch.status} without this request"
        for custom_id in chunk.custom_ids:
            if custom_id not in seen:
                retry[custom_id] = (reason, message)
        again: list[str] = []
        for custom_id, (code, message) in retry.items():
            if custom_id not in by_id:
                continue  # not billed and not asked for in this run
            if chunk.attempt < self.max_attempts:
                again.append(custom_id)
            else:
                lines_out.append(error_line(custom_id, code, self._clean(
                    f"{message} (after {chunk.attempt} batch attempts)")))
        self._store_all(store, lines_out)         # committed first ...
        state.update(chunk, collected=True)       # ... then the batch is done with
        log.info("openai_batch: batch %s %s: %d of %d requests answered, %d to resubmit", batch.id,
                 batch.status, len(seen) - len(retry.keys() & seen), len(chunk.custom_ids), len(again))
        return again

    def _store(self, store: Store, line: ResponseLine) -> None:
        self._store_all(store, [line])

    def _store_all(self, store: Store, lines: list[ResponseLine]) -> None:
        store_all(store, lines)
        n_errors = sum(line.get("error") is not None for line in lines)
        self.stats.ok += len(lines) - n_errors
        self.stats.errors += n_errors

    def _clean(self, text: str) -> str:
        return redact(text, self._api_key)


# ---------------------------------------------------------------------- helpers
def _line_bytes(request: RequestLine) -> bytes:
    return (compact_json(request) + "\n").encode("utf-8")


def _group_by_url(requests: Iterable[RequestLine]) -> dict[str, list[tuple[str, bytes]]]:
    groups: dict[str, list[tuple[str, bytes]]] = {}
    for request in requests:
        url = str(request.get("url") or "/v1/chat/completions")
        groups.setdefault(url, []).append((str(request["custom_id"]), _line_bytes(request)))
    return groups


def _classify(line: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """None for an answer; ('retry', code, message) or ('error', code, message) otherwise."""
    response = line.get("response")
    error = line.get("error")
    if isinstance(response, dict):
        status = int(response.get("status_code") or 0)
        if status == 200 and not error:
            return None
        body = response.get("body") if isinstance(response.get("body"), dict) else {}
        inner = body.get("error") if isinstance(body.get("error"), dict) else {}
        message = f"HTTP {status}: {inner.get('message') or 'no message'}"
        if status == 429 or status >= 500:
            return ("retry", f"http_{status}", message)
        return ("error", str(inner.get("code") or f"http_{status}"), message)
    if isinstance(error, dict):
        code = str(error.get("code") or "batch_error")
        message = str(error.get("message") or code)
        return ("retry" if code in RESUBMIT_CODES else "error", code, message)
    return ("retry", "batch_no_answer", "the batch returned neither a response nor an error")


def _newest_match(listing: Iterable[Any], match: Callable[[Any], bool], oldest: float) -> Any | None:
    """The first object of a newest-first listing (pages fetched as needed) that `match`es,
    looking no further back than `oldest` (a time.time())."""
    for obj in listing:
        if match(obj):
            return obj
        if obj.created_at < oldest:
            return None
    return None


def _normalised_ok(line: Mapping[str, Any]) -> ResponseLine:
    response = dict(line["response"])
    return {"id": line.get("id"), "custom_id": str(line["custom_id"]),
            "response": {"status_code": 200, "request_id": response.get("request_id", ""),
                         "body": response.get("body")},
            "error": None}



def _batch_errors(batch: Any) -> str:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    return "; ".join(f"{getattr(e, 'code', '')}: {getattr(e, 'message', '')}" for e in data)
