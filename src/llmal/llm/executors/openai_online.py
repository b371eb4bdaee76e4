"""The `openai` executor: online chat completions against any OpenAI-compatible server.

Requests run concurrently (at most `concurrency` in flight). Rate limits (429), server errors
(5xx, 408, 409), timeouts and connection errors are retried with exponential backoff and jitter,
waiting what the server asks for in `retry-after-ms` / `retry-after` when it says. The retry
policy is this module's: the openai client's own retries are switched off. Other 4xx answers
become error lines at once, except 401 (a wrong key), which stops the run. Every answer is handed to `store` as soon as it arrives.

Attempts that the server may have billed without an answer reaching the store are counted:
timeouts and connections lost after sending (`maybe_billed`), and 200s whose body cannot be read
(cut off, not JSON: `billed_unreadable`; the server billed them) before they are sent again.
A store that offers `maybe_billed(reason)` hears of each at once ("timeout" or "unreadable"),
so that a count survives a kill of this process.

Spec keys: base_url (None = OpenAI), api_key_env (OPENAI_API_KEY), concurrency (8),
max_retries (6), timeout (60 s), backoff_base (1 s), backoff_max (60 s).
"""
from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import httpx
import openai
from tqdm.auto import tqdm

from llmal.llm.executors.base import RequestLine, ResponseLine, Store, error_line, ok_line
from llmal.llm.executors.openai_common import (
    ExecutorConfigError,
    api_error_message,
    api_path,
    authentication_failed,
    is_retryable_status,
    redact,
    resolve_api_key,
    retry_after_seconds,
    spec_number,
)

log = logging.getLogger(__name__)


@dataclass
class OnlineStats:
    """What one run() did; `retries` counts every attempt after a request's first."""
    requests: int = 0
    ok: int = 0
    errors: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    maybe_billed: int = 0      # attempts sent that got no answer (timeout, connection lost after sending)
    billed_unreadable: int = 0  # 200s whose body could not be read (billed, sent again)
    seconds: float = 0.0


class _Retry(Exception):
    """A failed attempt worth another; `billed`: None, or why the server may have billed it
    ("timeout": sent, no answer; "unreadable": a 200 whose body could not be read)."""

    def __init__(self, reason: str, message: str, wait: float | None, billed: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.wait = reason, message, wait
        self.billed = billed


def sent_before_failing(exc: BaseException) -> bool:
    """Whether a connection error came after the request went out (the server may bill it)."""
    cause = exc.__cause__ or exc.__context__
    return not isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


class OpenAIOnlineExecutor:
    name = "openai"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.base_url: str | None = spec.get("base_url") or None
        self._api_key = resolve_api_key(spec)
        self._spec = {k: spec.get(k) for k in ("base_url", "api_key_env")}
        self.concurrency = int(spec_number(spec, "concurrency", 8, minimum=1))
        self.max_retries = int(spec_number(spec, "max_retries", 6))
        self.timeout = spec_number(spec, "timeout", 60.0, minimum=0.001)
        self.backoff_base = spec_number(spec, "backoff_base", 1.0)
        self.backoff_max = spec_number(spec, "backoff_max", 60.0)
        if self.backoff_max < self.backoff_base:
            raise ExecutorConfigError(
                f"annotator key 'backoff_max' ({self.backoff_max}) is below 'backoff_base' ({self.backoff_base})")
        self._jitter = random.Random()
        self._on_billed: Any = None
        self.stats = OnlineStats()

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIOnlineExecutor(base_url={self.base_url!r}, concurrency={self.concurrency})"

    # ------------------------------------------------------------------ public
    def run(self, requests: Sequence[RequestLine], store: Store) -> None:
        """Send every request; `store` gets exactly one response line per request."""
        if not requests:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._run(requests, store))
            return
        # called from inside an event loop (a notebook): run ours in a thread
        failure: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(self._run(requests, store))
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failure.append(exc)

        thread = threading.Thread(target=target, name="openai-online")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    # ------------------------------------------------------------------ internals
    async def _run(self, requests: Sequence[RequestLine], store: Store) -> None:
        started = time.monotonic()
        self.stats = OnlineStats(requests=len(requests))
        queue: asyncio.Queue[RequestLine] = asyncio.Queue()
        for request in requests:
            queue.put_nowait(request)
        progress = tqdm(total=len(requests), desc="openai", unit="req", mininterval=1.0)
        client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url,
                                    timeout=self.timeout, max_retries=0)

        sending = getattr(store, "sending", None)
        self._on_billed = getattr(store, "maybe_billed", None)

        async def worker() -> None:
            while True:
                try:
                    request = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if callable(sending):   # a kill from here on may leave a billed request behind
                    sending([str(request.get("custom_id"))])
                line = await self._send(client, request)
                store(line)
                if line["error"] is None:
                    self.stats.ok += 1
                else:
                    self.stats.errors += 1
                progress.update(1)
                if self.stats.retries:
                    progress.set_postfix(retries=self.stats.retries, errors=self.stats.errors, refresh=False)

        try:
            async with client:
                workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(requests)))]
                try:
                    await asyncio.gather(*workers)
                except BaseException:
                    for task in workers:
                        task.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
                    raise
        finally:
            progress.close()
            self.stats.seconds = time.monotonic() - started
        log.info("openai: %d requests, %d ok, %d errors, %d retries %s in %.1f s",
                 self.stats.requests, self.stats.ok, self.stats.errors, self.stats.retries,
                 self.stats.retry_reasons, self.stats.seconds)
        if self.stats.maybe_billed or self.stats.billed_unreadable:
            log.warning("openai: %d attempts timed out or lost their connection after sending, and %d "
                        "answers could not be read; the server may have billed them",
                        self.stats.maybe_billed, self.stats.billed_unreadable)

    async def _send(self, client: openai.AsyncOpenAI, request: RequestLine) -> ResponseLine:
        custom_id = str(request.get("custom_id"))
        url = request.get("url") or "/v1/chat/completions"
        body = request.get("body")
        if not isinstance(body, dict):
            return error_line(custom_id, "invalid_request", "request line has no JSON object 'body'")
        attempt = 0
        while True:
            try:
                return await self._attempt(client, custom_id, url, body)
            except _Retry as retry:
                if retry.billed:
                    self._count_billed(retry.billed)
                if attempt >= self.max_retries:
                    return error_line(custom_id, retry.reason,
                                      f"gave up after {attempt + 1} attempts: {retry.message}")
                wait = self._backoff(attempt, retry.wait)
                self.stats.retries += 1
                self.stats.retry_reasons[retry.reason] = self.stats.retry_reasons.get(retry.reason, 0) + 1
                log.debug("openai: %s attempt %d failed (%s); retrying in %.2f s",
                          custom_id, attempt + 1, retry.reason, wait)
                attempt += 1
                await asyncio.sleep(wait)

    def _count_billed(self, reason: str) -> None:
        if reason == "unreadable":
            self.stats.billed_unreadable += 1
        else:
            self.stats.maybe_billed += 1
        if callable(self._on_billed):
            self._on_billed(reason)

    async def _attempt(self, client: openai.AsyncOpenAI, custom_id: str, url: str,
                       body: dict[str, Any]) -> ResponseLine:
        try:
            # cast_to=httpx.Response: the raw answer, whatever keys the server sends
            response = await client.post(api_path(url), cast_to=httpx.Response, body=body)
        except openai.APITimeoutError as exc:
            raise _Retry("timeout", f"no answer within {self.timeout:g} s", None,
                         billed="timeout" if sent_before_failing(exc) else None) from None
        except openai.APIConnectionError as exc:
            raise _Retry("connection_error", self._clean(f"connection failed: {exc.__cause__ or exc}"),
                         None, billed="timeout" if sent_before_failing(exc) else None) from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status == 401:  # every other request would fail alike: stop the run
                raise authentication_failed(self._spec, api_error_message(exc), self._api_key) from None
            message = self._clean(f"HTTP {status}: {api_error_message(exc)}")
            if is_retryable_status(status):
                raise _Retry(f"http_{status}", message, retry_after_seconds(exc.response.headers)) from None
            return error_line(custom_id, _error_code(exc) or f"http_{status}", message)
        # a 200 is billed whether or not its body can be read
        try:
            payload = response.json()
        except ValueError:
            raise _Retry("invalid_response", f"HTTP {response.status_code} answer is not JSON", None,
                         billed="unreadable") from None
        if not isinstance(payload, dict):
            raise _Retry("invalid_response", "answer is not a JSON object", None, billed="unreadable")
        return ok_line(custom_id, payload, response.headers.get("x-request-id", ""))

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, max(self.backoff_max, 60.0))
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        return ceiling * (0.5 + 0.5 * self._jitter.random())

    def _clean(self, text: str) -> str:
        return redact(text, self._api_key)



def _error_code(exc: openai.APIStatusError) -> str | None:
    code = getattr(exc, "code", None)
    return str(code) if code else None
