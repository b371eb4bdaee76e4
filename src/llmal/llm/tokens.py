"""Token counters for cost planning, best available first.

1. tiktoken, when it knows the model and its encoding file is available (it downloads BPE files
   on first use; put them in TIKTOKEN_CACHE_DIR to count exactly offline);
2. the model's Hugging Face tokenizer (annotator key `tokenizer`), with its chat template;
3. the GGUF file's own vocabulary for executor `local`;
4. an approximation, 1 token per 4 characters, labelled as such in every output.
Chat overhead follows OpenAI's accounting for chat models: 3 tokens per message plus 3 priming
the reply, unless a chat template counts the real thing.
"""
from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from llmal.hub import resolve_model
from llmal.llm.executors.local import import_llama

PER_MESSAGE = 3
REPLY_PRIMING = 3
CHARS_PER_TOKEN = 4


class TokenCounter:
    def __init__(self, label: str, encode_len: Callable[[str], int],
                 chat_len: Callable[[Sequence[Mapping[str, str]]], int] | None = None,
                 exact: bool = True) -> None:
        self.label = label
        self.exact = exact
        self._len = encode_len
        self._chat_len = chat_len

    def text(self, text: str) -> int:
        return self._len(text)

    def messages(self, messages: Sequence[Mapping[str, str]]) -> int:
        if self._chat_len is not None:
            return self._chat_len(messages)
        return sum(PER_MESSAGE + self._len(m["content"]) for m in messages) + REPLY_PRIMING


def _tiktoken(model: str) -> TokenCounter | None:
    try:
        import tiktoken

        enc = tiktoken.encoding_for_model(model)
        enc.encode("probe")  # loads (or fails to download) the BPE file now
    except Exception:
        return None
    return TokenCounter(f"tiktoken {enc.name}", lambda s: len(enc.encode(s, disallowed_special=())))


def _hub_reachable(host: str = "huggingface.co", timeout_s: float = 3.0) -> bool:
    """Quick check before a download, so an offline machine does not sit through retries."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _hf(tokenizer: str) -> TokenCounter | None:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None
    name = resolve_model(tokenizer)
    tok = None
    for local_only in (True, False):
        if not local_only and (Path(name).exists() or not _hub_reachable()):
            break
        try:
            tok = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            break
        except Exception:
            continue
    if tok is None:
        return None

    def encode_len(s: str) -> int:
        return len(tok.encode(s, add_special_tokens=False))

    def chat_len(messages: Sequence[Mapping[str, str]]) -> int:
        ids = tok.apply_chat_template([dict(m) for m in messages], tokenize=True,
                                      add_generation_prompt=True)
        if isinstance(ids, Mapping):  # some versions return a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)
    return TokenCounter(f"HF tokenizer {tokenizer}", encode_len,
                        chat_len if getattr(tok, "chat_template", None) else None)


def _gguf(model: str) -> TokenCounter | None:
    path = resolve_model(model)
    if not Path(path).is_file():
        return None
    try:

        llm = import_llama().Llama(model_path=path, vocab_only=True, verbose=False)
    except Exception:
        return None

    def encode_len(s: str) -> int:
        return len(llm.tokenize(s.encode("utf-8"), add_bos=False, special=False))
    return TokenCounter(f"GGUF vocabulary of {model}", encode_len)


def approximate_counter() -> TokenCounter:
    return TokenCounter(f"APPROXIMATION (1 token ~ {CHARS_PER_TOKEN} characters)",
                        lambda s: math.ceil(len(s) / CHARS_PER_TOKEN), exact=False)


def make_counter(spec: Mapping[str, Any]) -> TokenCounter:
    """The best token counter available offline for an LLM annotator spec."""
    model = str(spec["model"])
    counter = _tiktoken(model)
    if counter is None and spec.get("tokenizer"):
        counter = _hf(str(spec["tokenizer"]))
    if counter is None and spec.get("kind") == "local":
        counter = _gguf(model)
    return counter or approximate_counter()
