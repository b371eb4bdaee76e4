"""What the OpenAI executors share: the API key from the environment, loopback detection,
keeping secrets out of messages, and reading Retry-After headers."""
from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, Mapping
from urllib.parse import urlsplit

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
# sent to servers on this machine that want no key (vllm serve, llama.cpp server, the test server)
LOCAL_PLACEHOLDER_KEY = "sk-no-key-local"

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)\S+"),
    re.compile(r"\b(sk-)[A-Za-z0-9_\-]{4,}"),
)


# statuses worth another try besides 5xx: request timeout, conflict (a lock), rate limit
RETRYABLE_STATUS = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def is_transient_api_error(exc: BaseException) -> bool:
    """An openai client error worth another try: 408/409/429/5xx, a timeout, a lost connection."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return is_retryable_status(exc.status_code)
    return isinstance(exc, openai.APIConnectionError)


class ExecutorConfigError(ValueError):
    """An executor spec cannot be used; the message names the key at fault (never a secret)."""


def authentication_failed(spec: Mapping[str, Any], server_message: str, *secrets: str) -> ExecutorConfigError:
    """The error for a 401: names the environment variable, never the key."""
    env_name = api_key_env(spec)
    target = spec.get("base_url") or "the OpenAI API"
    return ExecutorConfigError(
        f"{target} refused the API key from environment variable {env_name} (HTTP 401: "
        f"{redact(server_message, *secrets)})")


def is_loopback_url(base_url: str | None) -> bool:
    """True for http(s)://localhost..., 127.x.x.x and [::1] URLs."""
    if not base_url:
        return False
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key_env(spec: Mapping[str, Any]) -> str:
    """The name of the environment variable that holds the annotator's API key."""
    return str(spec.get("api_key_env") or DEFAULT_API_KEY_ENV)


def api_key_from_env(spec: Mapping[str, Any]) -> str:
    """The annotator's API key as the executors send it (outer whitespace stripped), or ""."""
    return os.environ.get(api_key_env(spec), "").strip()


def resolve_api_key(spec: Mapping[str, Any]) -> str:
    """The API key from the environment variable named by spec `api_key_env`.

    A missing key is allowed only for a loopback `base_url` (a placeholder is sent then)."""
    env_name = api_key_env(spec)
    key = api_key_from_env(spec)
    if key:
        return key
    base_url = spec.get("base_url")
    if is_loopback_url(base_url):
        return LOCAL_PLACEHOLDER_KEY
    target = base_url or "the OpenAI API"
    raise ExecutorConfigError(
        f"environment variable {env_name} is not set or empty; it must hold the API key for "
        f"{target} (choose another variable with the annotator key 'api_key_env')")


def mask_secrets(text: str, *secrets: str) -> str:
    """`text` with each given secret (of 4 characters or more) replaced by ***."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def redact(text: str, *secrets: str) -> str:
    """`text` with the given secrets and anything that looks like an API key masked."""
    text = mask_secrets(text, *secrets)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked to wait (`retry-after-ms` or `retry-after`), or None."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            import datetime as dt
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
    return None


def api_path(url: str) -> str:
    """'/v1/chat/completions' -> '/chat/completions' (the client's base_url ends with /v1)."""
    return url[3:] if url.startswith("/v1/") else url


def spec_number(spec: Mapping[str, Any], key: str, default: float, *, minimum: float = 0.0) -> float:
    value = spec.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ExecutorConfigError(f"annotator key {key!r} must be a number >= {minimum}, got {value!r}")
    return float(value)


def api_error_message(exc: Any) -> str:
    """The server's own error message of an openai.APIStatusError (its JSON body, else the text)."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(exc.message)
