"""`engine: openai` - any OpenAI-compatible chat-completions endpoint.

A `vllm serve` instance, a hosted API, or anything that speaks `POST {base_url}/chat/
completions`. Requests go out concurrently (at most `max_concurrency` per worker) over one
pooled `httpx.Client`; each has a timeout, and a 429, a 5xx, a timeout or a dropped
connection is retried (by `tenacity`) with exponential backoff, honouring `Retry-After`.
When the retries run out the batch raises, so the shard fails and is redone on the next run
instead of rejecting documents for an outage.

The API key is read on the worker from the environment variable named by `api_key_env`.
Only names ending in `_API_KEY` are accepted: a spec submitted through the control plane must
not be able to send, say, cloud credentials to a URL it chose.
"""

from __future__ import annotations

import json
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from stages._rephrase.engines import Chat, EngineError, Generation, Sampling, chat_to_text

RETRY_STATUSES = {408, 409, 429} | set(range(500, 600))


class _Retryable(Exception):
    """An attempt that failed in a way worth another: what went wrong, and how long the
    server asked us to wait (`Retry-After`), if it did."""

    def __init__(self, problem: str, retry_after: float | None = None):
        super().__init__(problem)
        self.retry_after = retry_after


class OpenAIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(pattern=r"^https?://", description="e.g. http://vllm:8000/v1")
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Z][A-Z0-9_]*_API_KEY$",
        description="environment variable holding the API key (name ends in _API_KEY)")
    max_concurrency: int = Field(8, gt=0, le=1024, description="requests in flight per worker")
    timeout_s: float = Field(120, gt=0, description="per request")
    max_retries: int = Field(5, ge=0, description="retries of a failed request")
    backoff_s: float = Field(1.0, ge=0, description="first wait before a retry; doubles")
    max_backoff_s: float = Field(60, ge=0, description="longest wait between retries")


class OpenAIEngine:
    def __init__(self, model: str, options: OpenAIOptions, tokenizer: str | None = None):
        self.model, self.options = model, options
        headers = {}
        if options.api_key_env:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise EngineError(f"environment variable {options.api_key_env} is not set on "
                                  "this worker; set it where the workers run (or drop "
                                  "openai.api_key_env for an endpoint without a key)")
            headers["Authorization"] = f"Bearer {key}"
        self.url = options.base_url.rstrip("/") + "/chat/completions"
        self.client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(options.timeout_s, connect=min(
                10.0, options.timeout_s)),
            limits=httpx.Limits(max_connections=options.max_concurrency,
                                max_keepalive_connections=options.max_concurrency))
        self.pool = ThreadPoolExecutor(options.max_concurrency, thread_name_prefix="rephrase")
        self._tokenizer = _load_tokenizer(tokenizer) if tokenizer else None
        self.retries = 0  # requests retried so far (for logs and tests)
        self._lock = threading.Lock()
        self._retrying = Retrying(retry=retry_if_exception_type(_Retryable),
                                  stop=stop_after_attempt(options.max_retries + 1),
                                  wait=self._wait, before_sleep=self._count_retry,
                                  reraise=True)

    def chunking_tokenizer(self):
        return self._tokenizer

    def generate(self, prompts: Sequence[Chat], sampling: Sampling) -> list[Generation]:
        return list(self.pool.map(lambda chat: self._complete(chat, sampling), prompts))

    def _complete(self, chat: Chat, sampling: Sampling) -> Generation:
        body = {"model": self.model, "messages": chat, "temperature": sampling.temperature,
                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens,
                "seed": sampling.seed_for(chat_to_text(chat)), "n": 1}
        if sampling.json_schema:  # structured outputs: the server constrains the answer
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": json.loads(sampling.json_schema), "strict": True}}
        try:  # a copy per request: the pool's threads each run their own retry loop
            return self._retrying.copy()(self._attempt, body)
        except _Retryable as last:
            raise EngineError(f"POST {self.url} failed after {self.options.max_retries + 1} "
                              f"attempts (last: {last}); the shard fails and is redone on the "
                              "next run") from None

    def _attempt(self, body: dict) -> Generation:
        try:
            response = self.client.post(self.url, json=body)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 200:
            return _parse(response)
        problem = f"HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(problem, _retry_after(response))
        raise EngineError(f"POST {self.url} failed with {problem}; check openai.base_url, the "
                          "model name and the API key")

    def _wait(self, state: RetryCallState) -> float:
        """The server's Retry-After, else backoff_s doubling per retry with up to 25% jitter
        (so workers that failed together do not retry together), capped at max_backoff_s."""
        asked = state.outcome.exception().retry_after
        backoff = self.options.backoff_s * 2 ** (state.attempt_number - 1) * (
            1 + 0.25 * random.random())
        return min(self.options.max_backoff_s, asked if asked is not None else backoff)

    def _count_retry(self, state: RetryCallState) -> None:
        with self._lock:
            self.retries += 1

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.client.close()


def _parse(response: httpx.Response) -> Generation:
    try:
        payload = response.json()
        choice = payload["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise EngineError(f"not a chat-completions response: {response.text[:300]}") from None
    text = (choice.get("message") or {}).get("content") or ""
    usage = payload.get("usage") or {}
    return Generation(text, choice.get("finish_reason") or "stop",
                      int(usage.get("completion_tokens") or 0))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _load_tokenizer(path: str):
    """The `tokenizers.Tokenizer` in `path` (a folder with tokenizer.json, or the file)."""
    from tokenizers import Tokenizer

    file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise EngineError(f"tokenizer not found: {file}; give a local tokenizer.json or the "
                          "model folder holding it")
    return Tokenizer.from_file(file)
