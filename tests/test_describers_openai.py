"""OpenAIDescriber against a real HTTP server on 127.0.0.1, through the real openai SDK."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("openai")

from fake_openai import FakeOpenAIServer, default_reply, image_key  # noqa: E402
from realness.describers import CachedDescriber, OpenAIDescriber, build_describer, summarize_descriptions  # noqa: E402
from realness.describers.base import DEFAULT_PROMPT  # noqa: E402
from realness.describers.openai import _retry_after_seconds  # noqa: E402
from realness.errors import DescriberError, RealnessError  # noqa: E402

SECRET = "sk-test-9f8e7d6c5b4a-never-store-me"


def noise_images(count: int, seed: int = 0, size: tuple[int, int] = (24, 32)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(*size, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


def fast_describer(server: FakeOpenAIServer, **options) -> OpenAIDescriber:
    """Short timeouts and backoffs, so failure paths take milliseconds."""
    settings = dict(base_url=server.base_url, api_key=SECRET, timeout=2.0, backoff_base=0.01, backoff_max=1.0)
    settings.update(options)
    return OpenAIDescriber("fake-vlm", **settings)


def test_images_arrive_intact_and_answers_land_in_order(server, tmp_path):
    arrays = noise_images(3, size=(17, 23))
    png_path = tmp_path / "odd.png"
    Image.fromarray(arrays[2]).save(png_path)
    descriptions = fast_describer(server).describe([arrays[0], arrays[1], str(png_path)])

    received = {request.key: request for request in server.chat_requests}
    assert len(received) == 3
    for array, description in zip(arrays, descriptions):
        request = received[image_key(array)]
        np.testing.assert_array_equal(request.image, array)  # lossless, pixel for pixel
        assert request.image_format == "data:image/png;base64|PNG"
        assert description.text == default_reply(image_key(array))
        assert description.verdict == "somewhat"
        assert (description.model, description.prompt_id) == ("fake-vlm", DEFAULT_PROMPT.id)
        assert description.prompt_tokens == 100 and description.completion_tokens == 7
    assert descriptions[2].item == str(png_path)
    body = server.chat_requests[0].body
    assert body["model"] == "fake-vlm"
    assert body["messages"][0]["content"][0]["text"] == DEFAULT_PROMPT.text
    assert summarize_descriptions(descriptions).total_tokens == 3 * 107


def test_transient_failures_are_retried_until_they_succeed(server):
    arrays = noise_images(3, seed=1)
    rate_limited, crashed, slow = (image_key(a) for a in arrays)
    server.retry_after = 0.5
    server.slow_seconds = 1.5
    server.plan = {rate_limited: ["429", "429"], crashed: ["500", "500"], slow: ["slow"]}
    # backoff_base is tiny: any wait near 0.5 s comes from Retry-After.
    descriptions = fast_describer(server, timeout=0.5, backoff_base=0.001).describe(arrays)

    assert [d.ok for d in descriptions] == [True, True, True]
    assert [d.text for d in descriptions] == [default_reply(image_key(a)) for a in arrays]
    attempts = {key: [r for r in server.chat_requests if r.key == key] for key in (rate_limited, crashed, slow)}
    assert [len(attempts[k]) for k in (rate_limited, crashed, slow)] == [3, 3, 2]
    times = [r.received_at for r in attempts[rate_limited]]
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.45  # Retry-After was honoured
    crash_times = [r.received_at for r in attempts[crashed]]
    assert max(b - a for a, b in zip(crash_times, crash_times[1:])) < 0.35  # jittered backoff, no Retry-After


def test_unrecoverable_items_are_reported_and_the_rest_returned(server):
    arrays = noise_images(5, seed=2)
    keys = [image_key(a) for a in arrays]
    server.plan = {keys[0]: ["malformed"] * 10, keys[1]: ["empty", "empty"], keys[2]: ["refusal"], keys[3]: ["500"] * 10}
    describer = fast_describer(server, max_retries=2)
    descriptions = describer.describe(arrays, on_error="skip")

    assert len(descriptions) == 5
    assert [d.ok for d in descriptions] == [False, False, False, False, True]
    assert descriptions[0].error.startswith("gave up after 3 attempts: malformed response")
    assert descriptions[1].error == "empty reply"
    assert "refused" in descriptions[2].error and "can't help" in descriptions[2].error
    assert descriptions[3].error == "gave up after 3 attempts: Error code: 500 - boom"
    assert all(d.text is None and d.verdict is None for d in descriptions[:4])
    assert descriptions[4].text == default_reply(keys[4])
    assert len([r for r in server.chat_requests if r.key == keys[3]]) == 3
    summary = summarize_descriptions(descriptions)
    assert (summary.described, summary.failed, summary.cached) == (1, 4, 0)

    with pytest.raises(DescriberError, match=r"item 1 \(ndarray 24x32x3 uint8\): empty reply"):
        describer.describe([arrays[4], arrays[1], arrays[4]])


def test_malformed_and_truncated_bodies_are_retried_like_a_5xx(server):
    arrays = noise_images(3, seed=7)
    keys = [image_key(a) for a in arrays]
    server.plan = {keys[0]: ["malformed", "malformed"], keys[1]: ["truncated", "truncated"], keys[2]: ["refusal"]}
    descriptions = fast_describer(server, max_retries=3).describe(arrays, on_error="skip")
    assert [d.text for d in descriptions[:2]] == [default_reply(keys[0]), default_reply(keys[1])]
    assert [len([r for r in server.chat_requests if r.key == k]) for k in keys] == [3, 3, 1]
    # A refusal is an answer, not a fault in transit: never retried, never a description.
    assert not descriptions[2].ok and "refused" in descriptions[2].error


def test_bad_credentials_stop_the_batch(server):
    arrays = noise_images(2, seed=3)
    server.plan = {image_key(arrays[0]): ["401"]}
    with pytest.raises(RealnessError, match=r"refused the request \(Error code: 401 - bad key\)"):
        fast_describer(server).describe(arrays, on_error="skip")


def test_cache_makes_a_second_run_free_and_never_stores_failures(server, tmp_path):
    arrays = noise_images(6, seed=4)
    server.plan = {image_key(arrays[5]): ["empty"]}
    cache_file = tmp_path / "cache.sqlite3"
    first = CachedDescriber(fast_describer(server), cache_file).describe(arrays, on_error="skip")
    assert [d.ok for d in first] == [True] * 5 + [False]
    assert not any(d.cached for d in first)
    requests_after_first = len(server.chat_requests)
    assert requests_after_first == 6

    second = CachedDescriber(fast_describer(server), cache_file).describe(arrays[:5])
    assert len(server.chat_requests) == requests_after_first  # zero requests
    assert [d.text for d in second] == [d.text for d in first[:5]]
    assert all(d.cached and d.prompt_tokens == 0 for d in second)
    assert summarize_descriptions(second).total_tokens == 0

    third = CachedDescriber(fast_describer(server), cache_file).describe(arrays)
    assert len(server.chat_requests) == requests_after_first + 1  # only the failed one is asked again
    assert third[5].ok and not third[5].cached


def test_api_key_appears_in_no_log_line_and_no_cache_row(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_LOG", "debug")
    caplog.set_level(logging.DEBUG)
    arrays = noise_images(3, seed=5)
    server.plan = {image_key(arrays[0]): ["429"], image_key(arrays[1]): ["refusal"]}
    describer = OpenAIDescriber("fake-vlm", base_url=server.base_url, timeout=2.0, backoff_base=0.01)
    cache_file = tmp_path / "cache.sqlite3"
    descriptions = CachedDescriber(describer, cache_file).describe(arrays, on_error="skip")

    assert all({k.lower(): v for k, v in r.headers.items()}["authorization"] == f"Bearer {SECRET}" for r in server.chat_requests)  # it was used
    assert caplog.records, "expected log lines to inspect"
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.__dict__)
    assert "retrying" in caplog.text
    assert SECRET not in repr(describer) and SECRET not in repr(vars(describer).keys())
    assert all(SECRET not in repr(d) for d in descriptions)
    for path in tmp_path.iterdir():  # the database, its WAL and shared-memory files
        assert SECRET.encode() not in path.read_bytes()


def test_concurrency_is_bounded_and_used(server):
    server.delay = 0.2
    arrays = noise_images(12, seed=6)
    start = time.perf_counter()
    descriptions = fast_describer(server, concurrency=4).describe(arrays)
    elapsed = time.perf_counter() - start
    assert all(d.ok for d in descriptions)
    assert server.max_in_flight == 4
    assert elapsed < 12 * 0.2 / 2  # serial would take 2.4 s; 4 at a time about 0.6 s


def test_only_images_beyond_the_size_limit_are_downscaled_and_it_is_said(server, caplog):
    big, small = noise_images(1, seed=7, size=(64, 64))[0], noise_images(1, seed=8, size=(8, 8))[0]
    caplog.set_level(logging.WARNING, logger="realness")
    descriptions = fast_describer(server, max_image_bytes=4000).describe([big, small])
    assert all(d.ok for d in descriptions)
    received = {r.key: r.image for r in server.chat_requests}
    np.testing.assert_array_equal(received[image_key(small)], small)
    shrunk = [image for key, image in received.items() if key != image_key(small)][0]
    assert shrunk.shape[0] < 64 and shrunk.shape[1] < 64
    assert "item 0 (ndarray 64x64x3 uint8)" in caplog.text and "downscaled from 64x64" in caplog.text


def test_build_describer_reads_the_model_from_the_server_or_the_spec(server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache_file = tmp_path / "c.sqlite3"
    described = build_describer(f"openai:@{server.base_url}", cache=cache_file)
    assert isinstance(described, CachedDescriber) and described.model == "fake-vlm"
    named = build_describer(f"openai:other-model@{server.base_url}", cache=False)
    assert isinstance(named, OpenAIDescriber) and named.model == "other-model"
    [description] = named.describe(noise_images(1, seed=9))
    assert description.model == "other-model" and server.chat_requests[-1].body["model"] == "other-model"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RealnessError, match="OPENAI_API_KEY"):
        build_describer("openai", cache=False)


def test_retry_after_header_forms():
    assert _retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert _retry_after_seconds({"retry-after": "2"}) == 2.0
    in_ten_seconds = _retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)})
    assert 8.0 < in_ten_seconds <= 10.0
    assert _retry_after_seconds({"retry-after": "soon"}) is None
    assert _retry_after_seconds({}) is None
