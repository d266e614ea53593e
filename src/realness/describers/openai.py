"""Descriptions from GPT-4.1, or from any OpenAI-compatible server (vLLM, Ollama, LM Studio, SGLang).

Built on the official ``openai`` SDK (``pip install 'realness[openai]'``). Retries are done
here, not by the SDK (its client gets ``max_retries=0``), so that the backoff, its jitter
and ``Retry-After`` are explicit and testable.
"""

from __future__ import annotations

import base64
import email.utils
import io
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PIL import Image

from realness.describers.base import DEFAULT_PROMPT, BaseDescriber, Description, Prompt, to_pil_image
from realness.errors import DescriberError, MissingDependencyError, RealnessError

logger = logging.getLogger(__name__)

DEFAULT_OPENAI_MODEL = "gpt-4.1"
#: The API refuses images whose encoded file exceeds 20 MB; a larger PNG is downscaled to fit.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Local OpenAI-compatible servers ignore the key but the SDK insists on one.
LOCAL_SERVER_API_KEY = "not-needed"
#: Requests in a row that time out with no answer at all before the run stops: a server that
#: accepts connections and never answers would otherwise hold it for every retry of every image.
SILENT_TIMEOUTS_TO_STOP = 3


@dataclass(frozen=True)
class _Reply:
    text: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class OpenAIDescriber(BaseDescriber):
    """Describe images with a chat-completions vision model over HTTP.

    Each image is sent losslessly, as a base64 PNG data URL of its decoded pixels; only an
    image whose PNG exceeds ``max_image_bytes`` is downscaled, with a warning naming it.
    Requests run ``concurrency`` at a time. 429s, 5xx, timeouts, connection errors and
    malformed or truncated response bodies are retried up to ``max_retries`` times, waiting what ``Retry-After`` asks or else an
    exponential backoff ``backoff_base * 2**attempt`` (capped at ``backoff_max``) with
    full jitter. ``time_budget`` bounds the whole of one image (attempts and waits): a server
    that accepts the connection and never answers fails each image by name within it. A refusal, an empty reply, a non-retryable 4xx, or a response still
    malformed after the last retry fails that image only; a refusal is never retried nor
    turned into a description. Bad credentials or an unknown model raise at once, and so does a
    server that lets ``SILENT_TIMEOUTS_TO_STOP`` requests in a row time out without a byte of
    answer, whatever ``max_retries`` and ``time_budget`` allow.

    The API key is handed to the SDK client and kept nowhere else: it is not an attribute,
    not in ``repr``, not logged and not cached.

    Args:
        model: The model name, e.g. ``"gpt-4.1"`` or the name a local server serves.
        base_url: An OpenAI-compatible server, e.g. ``"http://localhost:8000/v1"``;
            None for OpenAI's own API.
        api_key: Default ``$OPENAI_API_KEY``; with a ``base_url`` and no key, a placeholder.
        prompt: The question asked about each image.
        timeout: Seconds one request may wait for the server (each read; connecting too).
        max_retries: Retries per image after the first attempt.
        time_budget: Seconds one image may take in all, retries and waits included (None: no
            bound but ``timeout`` and ``max_retries``).
        on_retry: Called as ``on_retry(name, problem, wait_seconds)`` before each retry (from
            the request threads), e.g. to show retries on a progress line.
        backoff_base: First backoff in seconds (doubles each retry).
        backoff_max: Longest wait between attempts, ``Retry-After`` included.
        concurrency: Requests in flight at once.
        max_tokens: Most tokens per answer.
        temperature: Sampling temperature (0 for reproducible texts); None leaves the server default.
        image_detail: ``"auto"``, ``"low"`` or ``"high"`` (how finely the API looks at the image).
        max_image_bytes: Largest PNG sent as is.

    Attributes:
        requests_sent: HTTP requests made so far, retries included.

    Raises:
        MissingDependencyError: The ``openai`` package is not installed.
        RealnessError: No API key for OpenAI's own API.
    """

    def __init__(
        self,
        model: str = DEFAULT_OPENAI_MODEL,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        prompt: Prompt = DEFAULT_PROMPT,
        timeout: float = 60.0,
        max_retries: int = 6,
        time_budget: float | None = None,
        on_retry: Callable[[str, str, float], None] | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        concurrency: int = 8,
        max_tokens: int = 200,
        temperature: float | None = 0.0,
        image_detail: str = "auto",
        max_image_bytes: int = MAX_IMAGE_BYTES,
    ):
        super().__init__(model, prompt)
        openai = _import_openai()
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds above 0, not {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer of at least 0, not {max_retries!r}")
        if time_budget is not None and not time_budget > 0:
            raise ValueError(f"time_budget must be a number of seconds above 0, not {time_budget!r}")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if base_url is None:
                raise RealnessError("the OpenAI describer needs an API key: set OPENAI_API_KEY or pass api_key")
            api_key = LOCAL_SERVER_API_KEY
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.time_budget = time_budget
        self.on_retry = on_retry
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.concurrency = concurrency
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.image_detail = image_detail
        self.max_image_bytes = max_image_bytes
        self._openai = openai
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self._request_lock = threading.Lock()
        self.requests_sent = 0
        self._silent_timeouts = 0
        self._server_silent = threading.Event()  # set: every request thread stops at once

    def __repr__(self) -> str:
        return f"OpenAIDescriber(model={self.model!r}, base_url={self.base_url!r}, prompt={self.prompt.id!r})"

    def describe_tensors(self, images: Sequence[Any], names: Sequence[str]) -> list[Description]:
        """Describe decoded images, ``concurrency`` requests at a time.

        Args:
            images: Decoded images (3×H×W float tensors in [0, 1]).
            names: A readable name per image.

        Returns:
            One description per image, in order; failed images have ``error`` set.

        Raises:
            RealnessError: The server rejected the credentials or does not know the model.
            DescriberError: The server let several requests in a row time out without answering.
        """
        if not images:
            return []
        self._server_silent.clear()
        self._silent_timeouts = 0
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(images))) as pool:
            futures = [pool.submit(self._describe_one, image, name) for image, name in zip(images, names)]
            try:
                replies = [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [
            Description.success(name, reply.text, self.model, self.prompt.id,
                                prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
            if reply.text is not None
            else Description.failure(name, reply.error or "no description", self.model, self.prompt.id)
            for name, reply in zip(names, replies)
        ]

    def _describe_one(self, image: Any, name: str) -> _Reply:
        data_url = self._data_url(image, name)
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": self.prompt.text},
                    {"type": "image_url", "image_url": {"url": data_url, "detail": self.image_detail}},
                ],
            }
        ]
        options: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        openai = self._openai
        deadline = None if self.time_budget is None else time.monotonic() + self.time_budget
        problem = "no attempt finished"
        for attempt in range(self.max_retries + 1):
            if self._server_silent.is_set():
                return _Reply(error=f"not sent: {self._server_name()} does not answer")
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return _Reply(error=self._over_budget(attempt, problem))
                options["timeout"] = min(self.timeout, left)
            try:
                with self._request_lock:
                    self.requests_sent += 1
                response = self._client.chat.completions.create(**options)
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as error:
                raise RealnessError(f"{self._server_name()} refused the request ({error.message})") from None
            except (
                openai.RateLimitError,
                openai.InternalServerError,
                openai.APIConnectionError,
                # A body cut short or garbled on the way (a proxy dropping the connection) is
                # as transient as a 5xx: the same request usually succeeds next time.
                openai.APIResponseValidationError,
                ValueError,
            ) as error:
                self._track_silence(answered=not isinstance(error, openai.APIConnectionError),
                                    timed_out=isinstance(error, openai.APITimeoutError))
                problem = _error_text(error)
                if isinstance(error, (ValueError, openai.APIResponseValidationError)):
                    problem = f"malformed response: {problem}"
                if attempt == self.max_retries:
                    return _Reply(error=f"gave up after {attempt + 1} attempts: {problem}")
                wait = self._wait_before_retry(attempt, error)
                if deadline is not None and time.monotonic() + wait >= deadline:
                    return _Reply(error=self._over_budget(attempt + 1, problem))
                self._before_retry(name, problem, wait)
            except openai.APIStatusError as error:
                self._track_silence(answered=True)
                return _Reply(error=f"not retried: {error.message}")
            else:
                self._track_silence(answered=True)
                return _read_reply(response)
        raise AssertionError("unreachable: the last attempt returns")

    def _before_retry(self, name: str, problem: str, wait: float) -> None:
        logger.info("%s: %s; retrying in %.2f s", name, problem, wait)
        if self.on_retry is not None:
            self.on_retry(name, problem, wait)
        self._server_silent.wait(wait)  # a sleep that ends early once the server is declared silent

    def _track_silence(self, *, answered: bool, timed_out: bool = False) -> None:
        """Count the requests in a row that timed out without an answer (any answer, an error status
        included, starts the count again); raise once there are ``SILENT_TIMEOUTS_TO_STOP``."""
        with self._request_lock:
            if answered:
                self._silent_timeouts = 0
            elif timed_out:
                self._silent_timeouts += 1
            silent = self._silent_timeouts >= SILENT_TIMEOUTS_TO_STOP
        if silent:
            self._server_silent.set()
            raise DescriberError(
                self.base_url or "the OpenAI API",
                f"{SILENT_TIMEOUTS_TO_STOP} requests in a row got no answer within the timeout of {self.timeout:g} s; "
                "the server accepts connections but does not answer: check that it is running and not overloaded, "
                "or give it a longer timeout",
            )

    def _over_budget(self, attempts: int, problem: str) -> str:
        return f"no answer within the time budget of {self.time_budget:g} s ({attempts} attempts; last: {problem})"

    def _wait_before_retry(self, attempt: int, error: Exception) -> float:
        response = getattr(error, "response", None)
        asked = _retry_after_seconds(response.headers) if response is not None else None
        if asked is not None:
            return min(asked, self.backoff_max)
        return random.uniform(0.0, min(self.backoff_max, self.backoff_base * 2**attempt))

    def _server_name(self) -> str:
        return f"the server at {self.base_url}" if self.base_url else "the OpenAI API"

    def _data_url(self, image: Any, name: str) -> str:
        png = encode_png(image)
        if len(png) > self.max_image_bytes:
            png, old_size, new_size = _shrink_png(image, self.max_image_bytes)
            logger.warning(
                "%s: its PNG exceeds the API's %d-byte limit; sent downscaled from %dx%d to %dx%d",
                name, self.max_image_bytes, *old_size, *new_size,
            )
        return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def encode_png(image: Any) -> bytes:
    """Encode a 3×H×W float tensor in [0, 1] as PNG (lossless: the same uint8 pixels decode back).

    Args:
        image: The decoded image.

    Returns:
        The PNG file's bytes.
    """
    return _png_bytes(to_pil_image(image))


def _import_openai() -> Any:
    """The ``openai`` package, or a MissingDependencyError naming the extra that installs it."""
    try:
        import openai  # optional: the openai extra
    except ImportError as error:
        raise MissingDependencyError("openai", "openai", "the OpenAI describer") from error
    return openai


def _png_bytes(picture: Any) -> bytes:
    buffer = io.BytesIO()
    # Fastest zlib level: far quicker than the default for a few percent more bytes, still lossless.
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _shrink_png(image: Any, max_bytes: int) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    picture = to_pil_image(image)
    width, height = picture.size
    scale = 1.0
    while True:
        scale *= 0.75
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        png = _png_bytes(picture.resize(size, Image.Resampling.LANCZOS))
        if len(png) <= max_bytes or size == (1, 1):
            return png, (width, height), size


def _retry_after_seconds(headers: Any) -> float | None:
    """Seconds a ``retry-after-ms`` or ``Retry-After`` header (seconds or HTTP date) asks for."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if email.utils.parsedate(value) else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def _error_text(error: Exception) -> str:
    return str(getattr(error, "message", error))


def _read_reply(response: Any) -> _Reply:
    usage = getattr(response, "usage", None)
    tokens = {
        "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
    }
    choices = getattr(response, "choices", None)
    if not choices or getattr(choices[0], "message", None) is None:
        return _Reply(error=f"malformed response: no message in {type(response).__name__}", **tokens)
    choice = choices[0]
    if choice.message.refusal:
        return _Reply(error=f"the model refused: {choice.message.refusal}", **tokens)
    if choice.finish_reason == "content_filter":
        return _Reply(error="the reply was withheld by the content filter", **tokens)
    text = (choice.message.content or "").strip()
    if not text:
        return _Reply(error="empty reply", **tokens)
    return _Reply(text=text, **tokens)


def list_server_models(base_url: str, api_key: str | None = None, timeout: float = 10.0) -> list[str]:
    """The model names an OpenAI-compatible server serves (its ``/models`` endpoint).

    Args:
        base_url: The server, e.g. ``"http://localhost:8000/v1"``.
        api_key: Default ``$OPENAI_API_KEY`` or a placeholder.
        timeout: Seconds to wait.

    Returns:
        The model ids.

    Raises:
        MissingDependencyError: The ``openai`` package is not installed.
    """
    client = _import_openai().OpenAI(
        api_key=api_key or os.environ.get("OPENAI_API_KEY") or LOCAL_SERVER_API_KEY,
        base_url=base_url,
        timeout=timeout,
        max_retries=1,
    )
    return [model.id for model in client.models.list()]
