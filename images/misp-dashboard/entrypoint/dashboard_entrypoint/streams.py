"""Upstream's four Server-Sent-Events streams, served so that a closed page frees its thread and Redis connection,
and so that streams never take the threads that probes and pages need.

Upstream's generators (server.py at the pinned commit: event_stream_log, event_stream_maps,
eventStreamLastContributor, eventStreamAwards) block in `for msg in pubsub.listen()`: a client that went away is
noticed only when the next message on that channel is written, which for /_maps or the awards can be hours, so every
closed page keeps one gthread thread and one Redis connection until the pool is exhausted and the pod stops
answering. Here the same routes (upstream's views, login_required and all) get generators that poll Redis with a
timeout, write an SSE comment when nothing was written for `keepalive_seconds` (a closed connection then fails the
write and gunicorn closes the generator), stop when the login session is no longer valid, and always close the
pub/sub connection. A message that renders to nothing (upstream's EventMessage.to_json_ev() returns '' for a
message the page's `filters` cookie rejects) is not a write: only what reaches the client delays the keep-alive.
The messages are formatted as upstream formats them, with upstream's own objects.

gunicorn's gthread worker runs at most --threads requests at once and queues the rest (gunicorn/workers/gthread.py:
a ThreadPoolExecutor of `threads` workers), so a worker whose threads all stream would leave the liveness probe
waiting in the queue and get its pod restarted. Each worker therefore serves at most `threads - RESERVED_THREADS`
streams; one more is answered at once with an SSE `retry:` and no data, so that the browser's EventSource tries again
later (WHATWG HTML, "Server-sent events": a 200 stream that ends is re-established after the retry time; a non-200
answer would end it for good, and upstream's contributors page has no handler that reopens it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

KEEPALIVE = ": keep-alive\n\n"  # an SSE comment: EventSource ignores it (WHATWG HTML, "Server-sent events")
RESERVED_THREADS = 4  # per gunicorn worker, never given to a stream: probes, the login form, pages, JSON calls


@dataclass(frozen=True)
class StreamTiming:
    poll_seconds: float = 1.0  # longest wait in one Redis read
    keepalive_seconds: float = 15.0  # a vanished client is noticed within about two of these
    retry_seconds: float = 15.0  # how long a browser refused a stream waits before asking again


def stream_slots(threads: int) -> int:
    """Streams one gunicorn worker of `threads` threads serves at once."""
    return max(threads - RESERVED_THREADS, 1)


def pubsub_messages(
    open_pubsub: Callable[[], Any],
    timing: StreamTiming,
    still_valid: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[dict[str, Any] | None]:
    """None once subscribed, then each published message, or None after a wait of `poll_seconds` with none; ends
    when `still_valid()` (asked every `keepalive_seconds`, busy or not) is false. The pub/sub connection is opened at
    the first step (a stream never started holds none) and closed however the generator ends."""
    pubsub = open_pubsub()
    try:
        yield None
        last_check = clock()
        while True:
            if clock() - last_check >= timing.keepalive_seconds:
                if not still_valid():
                    return
                last_check = clock()
            yield pubsub.get_message(ignore_subscribe_messages=True, timeout=timing.poll_seconds)
    finally:
        pubsub.close()


def sse(
    events: Iterator[dict[str, Any] | None],
    render: Callable[[Any], str],
    timing: StreamTiming,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[str]:
    """SSE text: what `render` makes of each message's data, and a keep-alive comment at the first None (the
    response starts once subscribed: the browser's EventSource is open without waiting for a first message) and
    whenever nothing reached the client for `keepalive_seconds` (an empty rendering, upstream's filtered message,
    reaches nobody: gunicorn skips empty chunks). Closes `events` however it ends."""
    try:
        last_write = float("-inf")
        for message in events:
            text = "" if message is None else render(message["data"])
            if text:
                last_write = clock()
                yield text
            elif clock() - last_write >= timing.keepalive_seconds:
                last_write = clock()
                yield KEEPALIVE
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def refused(timing: StreamTiming) -> Iterator[str]:
    """The answer to a stream over the worker's limit: the browser's EventSource reconnects after `retry`."""
    return iter([f"retry: {round(timing.retry_seconds * 1000)}\n\n"])


class Slotted:
    """A stream's chunks, giving its slot back exactly once: when they end, fail, or are closed (even unstarted, when
    the server closes a response it never iterated)."""

    def __init__(self, chunks: Iterator[str], release: Callable[[], None]) -> None:
        self._chunks = chunks
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Slotted:
        return self

    def __next__(self) -> str:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            release()


def _contributor(server: Any, content: str, award: bool) -> str:
    # eventStreamLastContributor / eventStreamAwards in upstream's server.py
    log = json.loads(json.loads(content)["log"])
    answer = server.contributor_helper.getContributorFromRedis(log["org"])
    answer["epoch"] = log["epoch"]
    if award:
        answer["award"] = log["award"]
    return f"data: {json.dumps(answer)}\n\n"


def install(
    server: Any, timing: StreamTiming, still_valid: Callable[[], Callable[[], bool]], slots: int
) -> threading.BoundedSemaphore:
    """Replace upstream's stream generators in its server module; its views call them by their global names.

    `still_valid()` is called in the request (when the view runs) and returns the check made at each keep-alive.
    At most `slots` streams of this process are open at once (gunicorn loads the app in each worker); the returned
    semaphore counts them.
    """
    from flask import request

    open_streams = threading.BoundedSemaphore(slots)

    def serve(channel: Callable[[], tuple[Any, bool, str]], render: Callable[[Any], str]) -> Iterator[str]:
        check = still_valid()
        if not open_streams.acquire(blocking=False):
            return refused(timing)

        def open_pubsub() -> Any:
            client, pattern, name = channel()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                (pubsub.psubscribe if pattern else pubsub.subscribe)(name)
            except BaseException:
                pubsub.close()
                raise
            return pubsub

        return Slotted(sse(pubsub_messages(open_pubsub, timing, check), render, timing), open_streams.release)

    def event_stream_log() -> Iterator[str]:
        def render(content: str) -> str:
            # upstream reads the filters cookie at each message (its view wraps the stream in stream_with_context)
            filters = json.loads(request.cookies.get("filters", "{}"))
            return str(server.EventMessage(content, filters).to_json_ev())

        return serve(lambda: (server.redis_server_log, False, server.live_helper.CHANNEL), render)

    def event_stream_maps() -> Iterator[str]:
        channel = server.cfg.get("RedisMap", "channelDisp")
        return serve(lambda: (server.redis_server_map, True, channel), lambda content: f"data: {content}\n\n")

    def last_contributor() -> Iterator[str]:
        channel = server.cfg.get("RedisLog", "channelLastContributor")
        return serve(lambda: (server.redis_server_log, True, channel), lambda c: _contributor(server, c, award=False))

    def awards() -> Iterator[str]:
        channel = server.cfg.get("RedisLog", "channelLastAwards")
        return serve(lambda: (server.redis_server_log, True, channel), lambda c: _contributor(server, c, award=True))

    server.event_stream_log = event_stream_log
    server.event_stream_maps = event_stream_maps
    server.eventStreamLastContributor = last_contributor
    server.eventStreamAwards = awards
    return open_streams
