"""A real HTTP server on 127.0.0.1 posing as an OpenAI-compatible chat completions endpoint.

The ``openai`` SDK talks to it through ``base_url``. It decodes every image it receives
(so tests can compare pixels), records each request, and answers each image according to
a per-image plan of behaviours, one per attempt, so failures can be injected
deterministically even when requests arrive concurrently:

``"ok"`` a description; ``"429"`` rate limited with ``Retry-After``; ``"500"`` server
error; ``"slow"`` answers after ``slow_seconds`` (longer than the client's timeout);
``"malformed"`` a 200 whose body is not JSON; ``"truncated"`` a 200 whose connection
closes halfway through the promised body (a proxy cutting it); ``"empty"`` an empty message;
``"refusal"`` a refusal; ``"401"`` bad credentials.

Reusable outside the tests, e.g. by ``benchmarks/describe_speed.py``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

MODEL_NAME = "fake-vlm"


def image_key(pixels: np.ndarray) -> str:
    """Identify an image by its uint8 H×W×3 pixels (the server's plan is keyed by this)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    return hashlib.sha256(pixels.tobytes() + repr(pixels.shape).encode()).hexdigest()


def default_reply(key: str) -> str:
    """A reply that names the image, so tests can check which answer went where."""
    return f"Somewhat. Image {key[:12]} has uneven object transitions."


@dataclass
class RecordedRequest:
    """One request the server received."""

    path: str
    headers: dict
    body: dict | None
    image: np.ndarray | None = None
    image_format: str | None = None
    key: str | None = None
    behaviour: str = "ok"
    received_at: float = 0.0


@dataclass
class FakeOpenAIServer:
    """The loopback server; use as a context manager or call ``start`` / ``stop``.

    Attributes:
        delay: Seconds every answer waits (simulates model latency).
        plan: ``{image_key: [behaviour per attempt, ...]}``; attempts past the list are ``"ok"``.
        retry_after: The ``Retry-After`` seconds sent with a 429.
        slow_seconds: How long a ``"slow"`` answer takes.
        reply: Maps an image key to the answer text.
        requests: Every request received, in arrival order.
        max_in_flight: The most chat requests that were being answered at once.
        decode_images: Decode each image (for pixel checks and the plan); a benchmark turns
            it off so the server's own CPU use does not count against the client.
    """

    delay: float = 0.0
    plan: dict = field(default_factory=dict)
    retry_after: float = 0.05
    slow_seconds: float = 1.0
    reply: Callable[[str], str] = default_reply
    requests: list = field(default_factory=list)
    decode_images: bool = True

    def __post_init__(self):
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._in_flight = 0
        self.max_in_flight = 0

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give the SDK."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def chat_requests(self) -> list:
        """The chat completion requests only."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_behaviour(self, key: str | None) -> str:
        if key is None:
            return "ok"
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
        steps = self.plan.get(key, [])
        return steps[attempt] if attempt < len(steps) else "ok"

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms each.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.fake._record(RecordedRequest(self.path, dict(self.headers), None, received_at=time.time()))
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "owned_by": "test"}]})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        self.fake._enter()
        try:
            self._answer_chat()
        finally:
            self.fake._leave()

    def _answer_chat(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        image, image_format = _decode_first_image(body) if self.fake.decode_images else (None, None)
        key = image_key(image) if image is not None else None
        behaviour = self.fake._next_behaviour(key)
        self.fake._record(
            RecordedRequest(self.path, dict(self.headers), body, image, image_format, key, behaviour, time.time())
        )
        if self.fake.delay:
            time.sleep(self.fake.delay)
        if behaviour == "429":
            self._send_json(
                429,
                {"error": {"message": "rate limited", "type": "rate_limit_exceeded"}},
                {"Retry-After": str(self.fake.retry_after)},
            )
        elif behaviour == "500":
            self._send_json(500, {"error": {"message": "boom", "type": "server_error"}})
        elif behaviour == "401":
            self._send_json(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
        elif behaviour == "malformed":
            self._send_raw(200, b'{"id": "x", "choices": [', "application/json")
        elif behaviour == "truncated":
            whole = json.dumps(_completion(body.get("model", MODEL_NAME), self.fake.reply(key or ""), None)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            self.wfile.write(whole[: len(whole) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            if behaviour == "slow":
                time.sleep(self.fake.slow_seconds)
            content, refusal = self.fake.reply(key or ""), None
            if behaviour == "empty":
                content = ""
            elif behaviour == "refusal":
                content, refusal = None, "I'm sorry, I can't help with that."
            self._send_json(200, _completion(body.get("model", MODEL_NAME), content, refusal))

    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(self, status: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer


def _decode_first_image(body: dict) -> tuple[np.ndarray | None, str | None]:
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if part.get("type") == "image_url":
                url = part["image_url"]["url"]
                header, encoded = url.split(",", 1)
                with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
                    return np.asarray(image.convert("RGB")), f"{header}|{image.format}"
    return None, None


def _completion(model: str, content: str | None, refusal: str | None) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": len((content or refusal or "").split()),
            "total_tokens": 100 + len((content or refusal or "").split()),
        },
    }
