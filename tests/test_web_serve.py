"""`flowbot web`'s ASGI front: bodies read whole, under a deadline, before the app runs."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from bot.metrics_http import Telemetry
from bot.serve import BufferedBodies

Message = MutableMapping[str, Any]


class _App:
    """Records what it was called with and answers 200 with the body it read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        self.bodies.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _scope(length: int | None) -> dict[str, Any]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "method": "POST", "path": "/slack/events", "headers": headers}


def _run(front: BufferedBodies, scope: dict[str, Any], chunks: list[bytes], *,
         then_wait: bool = False) -> list[Message]:
    """Drive the front: the client sends ``chunks`` (then, with ``then_wait``, never finishes)."""
    sent: list[Message] = []

    async def main() -> None:
        queue = list(chunks)

        async def receive() -> Message:
            if queue:
                chunk = queue.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(queue) or then_wait}
            await asyncio.sleep(3600)  # a client that never sends the rest (cancelled by the deadline)
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            sent.append(message)

        await front(scope, receive, send)

    asyncio.run(main())
    return sent


def test_whole_body_reaches_the_app_in_one_piece() -> None:
    """A body sent in pieces reaches the app whole, once."""
    app = _App()
    sent = _run(BufferedBodies(app, telemetry=Telemetry(), seconds=1), _scope(11), [b"hello", b" world"])
    assert app.bodies == [b"hello world"] and sent[0]["status"] == 200


def test_withheld_body_is_408_at_the_deadline_and_counted() -> None:
    """A body that stops arriving is answered 408 with the connection closed; the app never runs."""
    app, telemetry = _App(), Telemetry()
    sent = _run(BufferedBodies(app, telemetry=telemetry, seconds=0.05), _scope(4000), [b"abc"], then_wait=True)
    assert app.bodies == []
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert 'flowbot_requests_rejected_total{reason="slow_body"} 1.0' in telemetry.render()


def test_announced_oversized_body_goes_to_the_app_unread() -> None:
    """A body announced over the limit is not read here: the app answers 413 without it."""
    app = _App()
    _run(BufferedBodies(app, telemetry=Telemetry(), seconds=1, max_body=10), _scope(600), [b"x" * 10])
    assert app.bodies == [b"x" * 10]  # what the app itself chose to read, nothing buffered before
