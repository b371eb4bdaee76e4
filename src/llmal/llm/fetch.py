"""Fetch the responses of LLM request lines, whatever the task: cache -> in-flight -> executor.

Every request line's custom_id (the hash of its body) is looked up in the response cache under
the annotator's backend identity; the uncached ones are reserved against other jobs sharing the
cache (inflight.py) and sent (identical bodies once) through the executor, whose every response
line is written to the cache the moment it arrives; what other jobs are sending is waited for
and read. A task turns the response lines into annotation rows (llmal.tasks.<task>.llm);
`finish_table` makes them an annotation table (llmal.contracts contract) with the run's
statistics (LLMRunStats), and requests possibly billed without an answer are counted for the
run that sent them (`settle_after_report`).
"""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import annotation_cost, make_annotations
from llmal.llm.backend import backend_identity
from llmal.llm.cache import ResponseCache, is_success
from llmal.llm.executors import make_executor
from llmal.llm.executors.base import Executor, RequestLine, ResponseLine, error_line
from llmal.llm.executors.openai_common import api_key_from_env, mask_secrets
from llmal.llm.inflight import InFlight


def sample_items(items: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A seeded sample of n items in their original order (all items if n is None or >= len)."""
    if n is None or n >= len(items):
        return items
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(items), size=int(n), replace=False))
    return items.iloc[idx]


def redactor(spec: Mapping[str, Any]) -> Callable[[str], str]:
    """Masks the annotator's API key (as the executors send it) in logged and stored text."""
    secret = api_key_from_env(spec)
    return lambda text: mask_secrets(text, secret)


@dataclass
class LLMRunStats:
    """What one LLM annotator call did (`table.attrs["llm"]`, also in the annotation parquet).

    maybe_billed: attempts the server may have billed without an answer reaching the cache, sent
    for this run (run_label) by this call or by a killed earlier attempt of the same run:
    timed out or lost their connection after sending, 200s whose body could not be read (billed),
    and requests in flight when an earlier attempt died. Their cost is in no table."""
    items: int = 0
    requests: int = 0              # distinct request bodies
    cached: int = 0                # answered from the cache (no new bill)
    sent: int = 0                  # handed to the executor by this job
    waited: int = 0                # sent by another job sharing the cache; this one waited
    failed: int = 0                # rows with status failed (retried by the next run)
    maybe_billed_timeouts: int = 0
    billed_unreadable: int = 0
    maybe_billed_lost_in_flight: int = 0
    legacy_adopted: int = 0        # answers taken over from a pre-backend cache
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    backend: str = ""

    @property
    def maybe_billed(self) -> int:
        return self.maybe_billed_timeouts + self.billed_unreadable + self.maybe_billed_lost_in_flight

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "maybe_billed": self.maybe_billed}


def finish_table(rows: Sequence[Mapping[str, Any]], stats: LLMRunStats, *, name: str,
                 log: Callable[[str], None], note: str = "") -> pd.DataFrame:
    """The annotation table of an LLM annotator's rows, with its run statistics (failed rows,
    reasoning tokens, cost) in stats and in `table.attrs["llm"]`, and its summary logged."""
    table = make_annotations(list(rows))
    stats.failed = int((table["status"] == "failed").sum())
    stats.reasoning_tokens = int(table["reasoning_tokens"].sum())
    stats.cost_usd = annotation_cost(table)
    table.attrs["llm"] = stats.as_dict()
    log(f"{name}: {summary_line(table)}{note}")
    return table


def report_problems(stats: LLMRunStats, *, name: str, log: Callable[[str], None]) -> None:
    """Say which requests may have been billed without an answer, and which rows failed."""
    if stats.maybe_billed:
        log(f"{name}: WARNING {stats.maybe_billed} requests may have been billed without an answer "
            f"reaching the cache ({stats.maybe_billed_timeouts} timed out or lost their connection "
            f"after sending, {stats.billed_unreadable} were answered with a body that could not be "
            f"read, {stats.maybe_billed_lost_in_flight} were in flight when an earlier attempt of "
            "this run died); their cost is not in the table")
    if stats.failed:
        log(f"{name}: {stats.failed} rows failed; a plain rerun retries exactly these")


def fetch_responses(lines: Sequence[RequestLine], custom_ids: Sequence[str], spec: Mapping[str, Any],
                    stats: LLMRunStats, *, cache_path: Path, state_dir: Path, name: str, what: str,
                    prompt: str, log: Callable[[str], None], executor: Executor | None = None,
                    lease_s: float | None = None, cache_mode: str = "local") -> dict[str, ResponseLine]:
    """The response line of every request: from the cache, or sent once through the executor
    (every answer cached the moment it arrives); a request without one gets an error line.
    Fills in `stats` (cached, sent, waited, possibly billed, backend)."""
    redact = redactor(spec)
    say = lambda m: log(f"{name}: {redact(m)}")  # noqa: E731
    fresh: dict[str, ResponseLine] = {}
    cache = ResponseCache(cache_path, mode=cache_mode, **({"lease_s": lease_s} if lease_s else {}))
    try:
        backend = backend_identity(spec, cache.file_hash)
        stats.backend = backend
        cached = {cid: c.line for cid, c in cache.get_many(list(custom_ids), backend).items()}
        stats.cached = len(cached)
        pending = [line for line in lines if line["custom_id"] not in cached]
        log(f"{name}: {what}, {len(lines)} distinct requests, {len(cached)} cached, "
            f"{len(pending)} to send ({spec.get('kind')}, {spec.get('model')}, prompt {prompt}, "
            f"backend {redact(backend)})")
        label = run_label(state_dir, cache_path)
        if pending:
            ex = executor or make_executor(spec, state_dir=Path(state_dir))
            with InFlight(cache, backend, log=say, label=label) as flight:
                send_once(ex, pending, cache, backend, flight, cached, fresh, stats, say)
        count_unanswered(cache, label, stats)
        stats.legacy_adopted = cache.adopted_legacy
    finally:
        cache.close()
    responses: dict[str, ResponseLine] = dict(cached)
    for line in lines:
        cid = line["custom_id"]
        if cid not in responses:
            responses[cid] = fresh.get(cid) or error_line(cid, "missing", "the executor returned no response")
    return responses


def send_once(executor: Executor, pending: Sequence[RequestLine], cache: ResponseCache, backend: str,
              flight: InFlight, cached: dict[str, ResponseLine], fresh: dict[str, ResponseLine],
              stats: LLMRunStats, log: Callable[[str], None]) -> None:
    """Send each pending request once across every job sharing the cache.

    Reserve what no other job is sending, read the cache again for what was reserved (another
    job may have answered it and let go since this job first looked), and send the rest; wait
    for the others, then read their answers from the cache; what they left unanswered (they
    failed or died) is claimed again."""
    todo = list(pending)
    while todo:
        mine, theirs = flight.claim([line["custom_id"] for line in todo])
        if mine:
            # another job may have answered some of them after this job read the cache and
            # before it reserved them: read again under the reservation, send only the rest
            late = {cid: c.line for cid, c in cache.get_many(list(mine), backend).items()}
            if late:
                cached.update(late)
                stats.waited += len(late)
                flight.done(list(late))
                mine = mine - set(late)
        if mine:
            own = [line for line in todo if line["custom_id"] in mine]
            stats.sent += len(own)
            try:
                run_executor(executor, own, cache, backend, fresh, log, flight=flight)
            finally:
                flight.done(list(mine))
        if not theirs:
            return
        log(f"waiting for another job that is sending {len(theirs)} of these requests")
        flight.wait(list(theirs))
        got = {cid: c.line for cid, c in cache.get_many(list(theirs), backend).items()}
        cached.update(got)
        stats.waited += len(got)
        todo = [line for line in todo if line["custom_id"] in theirs
                and line["custom_id"] not in got and line["custom_id"] not in fresh]


def run_label(state_dir: Path, cache_path: Path) -> str:
    """The run a request is sent for, as the response cache records it: the annotator's batch
    state dir (one per annotator of the annotate rule, one per annotator of each AL run, the
    same for a rerun), relative to the cache's folder when inside it."""
    state, home = Path(state_dir).resolve(), Path(cache_path).resolve().parent
    try:
        return state.relative_to(home).as_posix()
    except ValueError:
        return state.as_posix()


_SETTLE: ContextVar[dict[tuple[str, str], set[int]] | None] = ContextVar("llmal_settle", default=None)


@contextmanager
def settle_after_report() -> Iterator[None]:
    """Write the report (run.json, the annotation table) inside this block.

    The requests possibly billed without an answer that the LLM calls inside count (their own,
    and those of killed earlier attempts of the same run) stay recorded in the response cache
    until the block ends without an error, so a run killed before its report is written counts
    them again when it is rerun; each is counted once per block, however many calls see it.
    Outside such a block each call settles what it counted at once."""
    pending: dict[tuple[str, str], set[int]] = {}
    token = _SETTLE.set(pending)
    try:
        yield
    finally:
        _SETTLE.reset(token)
    for (path, mode), ids in pending.items():
        if ids:
            with ResponseCache(path, mode=mode) as cache:
                cache.settle(ids)


def count_unanswered(cache: ResponseCache, label: str, stats: LLMRunStats) -> None:
    """Put run `label`'s requests possibly billed without an answer, not counted yet, in `stats`."""
    rows = cache.unanswered(label)
    pending = _SETTLE.get()
    if pending is None:
        cache.settle(rows)
    else:
        seen = pending.setdefault((str(cache.path), cache.mode), set())
        rows = {i: row for i, row in rows.items() if i not in seen}
        seen.update(rows)
    by_reason = Counter()
    for reason, n in rows.values():
        by_reason[reason] += n
    stats.maybe_billed_timeouts += by_reason["timeout"]
    stats.billed_unreadable += by_reason["unreadable"]
    stats.maybe_billed_lost_in_flight += by_reason["lost_in_flight"]


class CacheStore:
    """The store handed to an executor: response lines go to the cache at once and into `fresh`.

    `store(line)` commits one line, `store.many(lines)` a whole batch file in one transaction.
    A successful line whose custom_id this run did not ask for (a resumed batch holding requests
    of an earlier, larger run) is cached all the same, since it was paid for and its custom_id is
    the hash of its request; other unknown lines are logged and dropped. The first answer wins.

    Executors may also call `store.sending(custom_ids)` just before sending (a job killed
    afterwards may have been billed), `store.maybe_billed(reason)` for an attempt that may have
    been billed without an answer (recorded for this run at once), and `store.already_cached(custom_ids)` once they hold their
    own lock (the batch executor), which returns the ids another job answered meanwhile.
    """

    def __init__(self, cache: ResponseCache, backend: str, wanted: set[str],
                 fresh: dict[str, ResponseLine], log: Callable[[str], None],
                 flight: InFlight | None = None) -> None:
        self.cache, self.backend, self.wanted, self.fresh, self.log = cache, backend, wanted, fresh, log
        self.flight = flight

    def __call__(self, line: ResponseLine) -> None:
        self.many([line])

    def sending(self, custom_ids: Sequence[str]) -> None:
        if self.flight is not None:
            self.flight.sent(list(custom_ids))

    def maybe_billed(self, reason: str, n: int = 1) -> None:
        if self.flight is not None:
            self.flight.unanswered(reason, n)

    def already_cached(self, custom_ids: Sequence[str]) -> set[str]:
        got = self.cache.get_many(list(custom_ids), self.backend)
        self.fresh.update({cid: c.line for cid, c in got.items()})
        return set(got)

    def many(self, lines: Sequence[ResponseLine]) -> None:
        accepted: dict[str, ResponseLine] = {}
        paid_elsewhere: list[ResponseLine] = []
        for line in lines:
            cid = line.get("custom_id") if isinstance(line, dict) else None
            if cid not in self.wanted:
                if cid and is_success(line):
                    paid_elsewhere.append(line)
                else:
                    self.log(f"ignored a response line with unknown custom_id {str(cid)[:20]!r}")
                continue
            if any(cid in seen and is_success(seen[cid]) for seen in (self.fresh, accepted)):
                continue  # first answer wins, as in the cache
            accepted[cid] = line
        self.cache.put_many([*accepted.values(), *paid_elsewhere], self.backend)   # committed first
        self.fresh.update(accepted)


def run_executor(executor: Executor, pending: Sequence[dict[str, Any]], cache: ResponseCache,
                 backend: str, fresh: dict[str, ResponseLine], log: Callable[[str], None],
                 flight: InFlight | None = None) -> None:
    """Send `pending`; every response line goes to the cache at once and into `fresh`."""
    wanted = {line["custom_id"] for line in pending}
    executor.run(pending, CacheStore(cache, backend, wanted, fresh, log, flight))


def counts(table: pd.DataFrame) -> dict[str, Any]:
    """ok / invalid / failed counts and total cost of an annotation table."""
    c = table["status"].value_counts()
    return {"n": int(len(table)), "ok": int(c.get("ok", 0)), "invalid": int(c.get("invalid", 0)),
            "failed": int(c.get("failed", 0)), "cost_usd": annotation_cost(table),
            "input_tokens": int(table["input_tokens"].sum()),
            "output_tokens": int(table["output_tokens"].sum()),
            "reasoning_tokens": int(table["reasoning_tokens"].sum()),
            "cached_tokens": int(table["cached_tokens"].sum())}


def summary_line(table: pd.DataFrame) -> str:
    c = counts(table)
    return (f"ok {c['ok']}, invalid {c['invalid']}, failed {c['failed']} of {c['n']}; "
            f"{c['input_tokens']} input ({c['cached_tokens']} cached) + {c['output_tokens']} output "
            f"tokens ({c['reasoning_tokens']} reasoning); "
            f"cost ${c['cost_usd']:.4f}")
