"""The stream generators' own rules, with a pub/sub double and a clock the test moves."""

from __future__ import annotations

import itertools

import pytest
from dashboard_entrypoint import streams

TIMING = streams.StreamTiming(poll_seconds=1, keepalive_seconds=15)


class PubSub:
    """redis-py's PubSub as the streams use it (redis 8.1.0 redis/client.py: get_message(ignore_subscribe_messages,
    timeout) returns a message dict or None after waiting up to `timeout`; close())."""

    def __init__(self, clock: list[float], messages: list[str | None]) -> None:
        self.clock, self.messages, self.closed = clock, messages, False

    def get_message(self, ignore_subscribe_messages: bool = False, timeout: float = 0.0) -> dict | None:
        assert not self.closed
        data = self.messages.pop(0) if self.messages else None
        if data is None:
            self.clock[0] += timeout  # nothing published: the call waited the whole timeout
            return None
        self.clock[0] += 0.01
        return {"type": "pmessage", "data": data}

    def close(self) -> None:
        self.closed = True


def run(messages, valid, render=lambda data: f"data: {data}\n\n", limit=10_000):
    clock = [0.0]
    pubsub = PubSub(clock, messages)
    answers = iter(valid)
    events = streams.pubsub_messages(lambda: pubsub, TIMING, lambda: next(answers), clock=lambda: clock[0])
    chunks = streams.sse(events, render, TIMING, clock=lambda: clock[0])
    assert next(chunks) == streams.KEEPALIVE  # the response starts at once
    out = list(itertools.islice(chunks, limit))
    return out, pubsub


def test_silence_gets_a_keep_alive_every_interval():
    out, pubsub = run([], [True, True, True, False])
    assert out == [streams.KEEPALIVE] * 4  # at 15, 30, 45 and 60 s; the session check at 60 s ends the stream
    assert pubsub.closed


def test_a_busy_stream_still_ends_when_the_session_does():
    out, pubsub = run(["event"] * 5000, [True, False])
    assert 1000 < len(out) < 5000  # ended after about 30 s of messages, not when they ran out
    assert set(out) == {"data: event\n\n"}
    assert pubsub.closed


def test_messages_that_render_to_nothing_do_not_delay_the_keep_alive():
    """Upstream's EventMessage.to_json_ev() is '' for a message the page's filters reject: nothing is written, so
    only a keep-alive can reveal a closed page."""
    out, pubsub = run(["filtered"] * 5000, [True] * 10, render=lambda data: "", limit=3)  # 50 s of messages
    assert out == [streams.KEEPALIVE] * 3
    assert pubsub.messages, "the keep-alives came at 15, 30 and 45 s, while the messages went on"
    out, _ = run(["shown", *["filtered"] * 2000], [True] * 10, render=lambda d: "" if d == "filtered" else d, limit=2)
    assert out == ["shown", streams.KEEPALIVE]


def test_closing_the_stream_closes_the_pubsub():
    clock = [0.0]
    pubsub = PubSub(clock, ["one"])
    events = streams.pubsub_messages(lambda: pubsub, TIMING, lambda: True, clock=lambda: clock[0])
    chunks = streams.sse(events, lambda data: data, TIMING, clock=lambda: clock[0])
    assert next(chunks) == streams.KEEPALIVE
    assert next(chunks) == "one"
    chunks.close()  # what the WSGI server does when the client has gone
    assert pubsub.closed


def test_a_stream_never_started_opens_no_pubsub_and_gives_its_slot_back():
    opened, released = [], []
    events = streams.pubsub_messages(lambda: opened.append(1), TIMING)
    slotted = streams.Slotted(streams.sse(events, str, TIMING), lambda: released.append(1))
    slotted.close()  # a response closed before its first chunk
    slotted.close()
    assert (opened, released) == ([], [1])


def test_a_failing_stream_gives_its_slot_back():
    def chunks():
        yield "data: 1\n\n"
        raise ConnectionError("Redis went away")

    released = []
    slotted = streams.Slotted(chunks(), lambda: released.append(1))
    assert next(slotted) == "data: 1\n\n"
    with pytest.raises(ConnectionError):
        next(slotted)
    assert released == [1]


def test_slots_leave_threads_for_probes_and_pages():
    assert streams.stream_slots(32) == 32 - streams.RESERVED_THREADS
    assert streams.RESERVED_THREADS >= 2
    assert list(streams.refused(streams.StreamTiming(retry_seconds=15))) == ["retry: 15000\n\n"]
