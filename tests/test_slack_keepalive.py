"""The kept-alive client (``bot.slack_keepalive``): slack_sdk's ``WebClient`` in every answer,
one connection instead of one per call."""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack_keepalive import KeptAliveClient
from bot.web import kept_alive
from tests.fakes.slack_api import FakeSlack

VIEW: dict[str, Any] = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def _clients(fake: FakeSlack) -> tuple[WebClient, KeptAliveClient]:
    plain = WebClient(base_url=fake.api_url, token=fake.token, retry_handlers=[])
    return plain, KeptAliveClient(base_url=fake.api_url, token=fake.token, retry_handlers=[])


def _outcome(call: Any) -> tuple[Any, ...]:
    """What a caller sees of a call: its data, or the error's type, status, error and Retry-After."""
    try:
        answer = call()
    except SlackApiError as err:
        headers = {k.lower(): v for k, v in err.response.headers.items()}
        return ("SlackApiError", err.response.status_code, err.response.get("error"), headers.get("retry-after"))
    return ("ok", answer.status_code, answer.data)


def test_publishes_over_one_connection(fake: FakeSlack) -> None:
    """Five views published by one thread: five calls at Slack, over one connection (the
    plain client opens one per call)."""
    plain, kept = _clients(fake)
    for _ in range(5):
        kept.views_publish(user_id="U1", view=VIEW)
    assert len(fake.calls("views.publish")) == 5 and fake.connections == 1
    assert fake.views()["U1"]["blocks"][0]["text"]["text"] == "hi"
    for _ in range(2):
        plain.views_publish(user_id="U1", view=VIEW)
    assert fake.connections == 3


@pytest.mark.parametrize("fault", ["refused", "ratelimited", "http 500", "bad token"])
def test_answers_are_the_plain_clients(fake: FakeSlack, fault: str) -> None:
    """Slack's refusals reach the caller exactly as through slack_sdk's own transport: the
    same SlackApiError, status, error and Retry-After, and the connection serves on."""
    plain, kept = _clients(fake)
    outcomes = []
    for client in (plain, kept):
        if fault == "refused":
            fake.fail("views.publish", error="not_enabled")
        elif fault == "ratelimited":
            fake.rate_limit("views.publish", retry_after=7)
        elif fault == "http 500":
            fake.fail("views.publish", status=500)
        else:
            client.token = "xoxb-not-known"
        outcomes.append(_outcome(lambda c=client: c.views_publish(user_id="U1", view=VIEW)))
        client.token = fake.token
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] == "SlackApiError"
    assert _outcome(lambda: kept.views_publish(user_id="U1", view=VIEW))[:2] == ("ok", 200)
    assert fake.connections == 2  # the plain client's call, and the kept one's two calls on one


def test_a_connection_closed_without_an_answer_is_opened_again(fake: FakeSlack) -> None:
    """Slack closing a kept-alive connection (here: after taking the call, unanswered) costs
    nothing the caller sees: the call goes once more on a new connection and succeeds. Safe
    for views.publish: the same view published twice is the same Home."""
    _, kept = _clients(fake)
    kept.views_publish(user_id="U1", view=VIEW)
    fake.drop_after_store("views.publish")
    assert kept.views_publish(user_id="U2", view=VIEW)["ok"]
    assert [c.params["user_id"] for c in fake.calls("views.publish")] == ["U1", "U2", "U2"]
    assert fake.connections == 2


def test_a_new_connection_closed_without_an_answer_fails_as_urlopen_fails(fake: FakeSlack) -> None:
    """On a connection just opened, no answer is Slack's failure, not a stale connection: it
    is not sent again here, and fails as through urllib (RemoteDisconnected, which slack_sdk's
    connection-error handler may retry)."""
    plain, kept = _clients(fake)
    raised = []
    for client in (plain, kept):
        fake.drop_after_store("views.publish")
        with pytest.raises(ConnectionResetError) as caught:
            client.views_publish(user_id="U1", view=VIEW)
        raised.append(type(caught.value))
    assert raised[0] is raised[1] is http.client.RemoteDisconnected
    assert len(fake.calls("views.publish")) == 2
    assert kept.views_publish(user_id="U1", view=VIEW)["ok"]


def test_nobody_listening_fails_as_urlopen_fails() -> None:
    """A Slack address nobody answers on: URLError, as through urllib."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/"
    for client in (WebClient(base_url=url, token="xoxb-x", retry_handlers=[]),
                   KeptAliveClient(base_url=url, token="xoxb-x", retry_handlers=[])):
        with pytest.raises(urllib.error.URLError):
            client.views_publish(user_id="U1", view=VIEW)


def test_each_thread_has_its_own_connection(fake: FakeSlack) -> None:
    """Eight threads publishing at once each succeed, on a connection of their own, kept."""
    _, kept = _clients(fake)
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def publish(user: str) -> None:
        start.wait()
        try:
            for _ in range(3):
                kept.views_publish(user_id=user, view=VIEW)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            failures.append(err)

    threads = [threading.Thread(target=publish, args=(f"U{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failures == [] and len(fake.calls("views.publish")) == 24
    assert fake.connections == 8
    kept.close()
    kept.views_publish(user_id="U1", view=VIEW)
    assert fake.connections == 9
    for opened in (10, 11):  # a connection opened again after a close is closed by the next
        kept.close()
        kept.views_publish(user_id="U1", view=VIEW)
        assert fake.connections == opened


def test_kept_alive_copies_the_clients_settings(fake: FakeSlack) -> None:
    """``bot.web.kept_alive``: the same token, address, timeout and retry handlers as the app's."""
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    plain = WebClient(base_url=fake.api_url, token=fake.token, timeout=3)
    plain.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    kept = kept_alive(plain)
    assert isinstance(kept, KeptAliveClient)
    assert (kept.token, kept.base_url, kept.timeout) == (fake.token, fake.api_url, 3)
    assert [type(h) for h in kept.retry_handlers] == [type(h) for h in plain.retry_handlers]
    assert kept.views_publish(user_id="U1", view=VIEW)["ok"]


@pytest.mark.parametrize("handlers", ["none", "the app's"])
def test_an_answer_reads_as_the_plain_clients_with_or_without_retry_handlers(fake: FakeSlack, handlers: str) -> None:
    """A Web API answer comes parsed by msgspec instead of slack_sdk's ``json.loads``: what a
    caller reads of it (its data, the view echoed inside) is the plain client's, whether or
    not retry handlers look at the answer first (the app's client has two)."""
    from bot.app import make_client
    from tests.slack_helpers import settings

    if handlers == "none":
        plain, kept = _clients(fake)
    else:
        plain = make_client(settings(SLACK_BOT_TOKEN=fake.token, SLACK_API_URL=fake.api_url))
        kept = kept_alive(plain)  # type: ignore[assignment]
        assert len(kept.retry_handlers) == 2
    view = {**VIEW, "blocks": [*VIEW["blocks"], {"type": "section", "text": {"type": "mrkdwn", "text": "é ✓ \\n"}}]}
    a, b = (_outcome(lambda c=c: c.views_publish(user_id="U1", view=view)) for c in (plain, kept))
    assert a[0] == b[0] == "ok" and isinstance(b[2], dict)
    ids = a[2]["view"].pop("id"), b[2]["view"].pop("id")  # Slack gives each published view its own
    assert a == b and ids[0] != ids[1] and b[2]["view"]["blocks"][1]["text"]["text"] == "é ✓ \\n"


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b'{"ok": tru', b"[1, 2]"])
def test_an_answer_that_is_no_json_object_fails_as_the_plain_clients(body: bytes) -> None:
    """A 200 whose body is not a JSON object (a proxy's page, a cut answer) is reported as
    slack_sdk reports it through its own transport."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/"
        outcomes = []
        for client in (WebClient(base_url=url, token="xoxb-test"), KeptAliveClient(base_url=url, token="xoxb-test")):
            try:
                outcomes.append(_outcome(lambda c=client: c.views_publish(user_id="U1", view=VIEW)))
            except (ValueError, AttributeError) as err:  # slack_sdk reads a cut object itself, and a list as an object
                outcomes.append((type(err).__name__, str(err)))
    finally:
        server.shutdown()
        server.server_close()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] != "ok" or body == b"[1, 2]"
