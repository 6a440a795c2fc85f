"""A ``WebClient`` that keeps its connections to Slack open, for calls that are safe to repeat.

slack_sdk's ``WebClient`` sends every call through ``urllib.request.urlopen``: a new TCP (and,
against Slack, TLS) connection per call, and http.client's email-based header parsing of the
answer. For App Home that was about 1 ms of a worker's CPU per ``views.publish`` on loopback,
a third of an open (``bench/home_latency.py``); against slack.com a TLS handshake and a round
trip more come on top.

:class:`KeptAliveClient` is the same client, retry handlers, ``SlackResponse`` and errors
included: only the one method that moves bytes (``_perform_urllib_http_request_internal``,
slack_sdk's seam between its retry loop and ``urlopen``) is replaced. Each thread keeps one
HTTP/1.1 connection per host open and reads answers with httptools (the C parser uvicorn
serves with). Its contract is urlopen's: a 2xx answer returns ``{status, headers, body}``;
any other status raises ``urllib.error.HTTPError`` with the answer's headers and body, so a
429 reaches slack_sdk's rate-limit handler as before. A JSON object answer also comes parsed
(by msgspec, as ``parsed_body``, which slack_sdk's ``_urllib_api_call`` takes as is) with its
body as bytes (so slack_sdk's retry loop does not parse it again with ``json.loads``): Slack
echoes the whole view a ``views.publish`` sent, and ``json.loads`` of it cost about 0.1 ms.

A kept-alive connection may have been closed by Slack while idle; the request is then sent
once more on a new connection, but only when nothing of an answer had arrived. A request that
reached Slack could so be carried out twice, which is why this client is for calls whose
repetition changes nothing (``views.publish`` of a whole Home view: the last one stands), and
is not the app's client for posting messages.
"""

from __future__ import annotations

import email.message
import http
import http.client
import io
import socket
import ssl
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import httptools
import msgspec
from slack_sdk import WebClient

_CHUNK = 65536
_JSON = msgspec.json.Decoder(dict[str, Any])  # a Web API answer: a JSON object


class KeptAliveClient(WebClient):
    """``WebClient`` whose HTTP connections stay open, one per thread and host (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._all: list[_Connection] = []  # every thread's, to close them all
        self._all_lock = threading.Lock()

    def close(self) -> None:
        """Close every thread's connection (a thread's next call opens it again, and a later
        close closes it again)."""
        with self._all_lock:
            connections = list(self._all)
        for connection in connections:
            connection.close()

    def _perform_urllib_http_request_internal(self, url: str, req: urllib.request.Request) -> dict[str, Any]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return super()._perform_urllib_http_request_internal(url, req)
        if self.proxy is not None:  # urllib's ProxyHandler knows proxies; this does not
            return super()._perform_urllib_http_request_internal(url, req)
        key = (parts.scheme, parts.hostname, parts.port)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        headers = {k.title(): str(v) for k, v in req.header_items()}
        body = req.data if isinstance(req.data, bytes) else b""
        connection = self._connection(key)
        answer = connection.request(path, headers, body)
        if not 200 <= answer.status < 300:
            message = email.message.Message()
            for name, value in answer.headers:
                message[name] = value
            raise urllib.error.HTTPError(url, answer.status, answer.reason, message,
                                         io.BytesIO(answer.body))
        charset = _charset(answer.header("content-type")) or "utf-8"
        headers = dict(answer.headers)
        if charset.lower().replace("-", "") == "utf8" and answer.body[:1] == b"{":
            try:
                parsed = _JSON.decode(answer.body)
            except msgspec.DecodeError:
                pass  # slack_sdk reports it, as an answer it cannot read
            else:
                return {"status": answer.status, "headers": headers, "body": answer.body, "parsed_body": parsed}
        return {"status": answer.status, "headers": headers, "body": answer.body.decode(charset)}

    def _connection(self, key: tuple[str, str, int | None]) -> _Connection:
        connections: dict[tuple[str, str, int | None], _Connection] | None = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get(key)
        if connection is None:
            scheme, host, port = key
            connection = _Connection(scheme, host, port, timeout=self.timeout,
                                     context=self.ssl if scheme == "https" else None)
            connections[key] = connection
            with self._all_lock:
                self._all.append(connection)
        return connection


class _Answer:
    """One HTTP answer, as httptools parsed it."""

    def __init__(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self.body = b""
        self.complete = False
        self.headers_complete = False
        self.keep_alive = False
        self.parser: Any = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    # httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.headers_complete = True
        self.keep_alive = bool(self.parser.should_keep_alive())  # llhttp forgets it once complete

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.body = b"".join(self._body)
        self.complete = True


class _Connection:
    """One kept-alive HTTP/1.1 connection to ``host``; used by one thread at a time."""

    def __init__(self, scheme: str, host: str, port: int | None, *, timeout: float,
                 context: ssl.SSLContext | None) -> None:
        self._https = scheme == "https"
        self._host = host
        self._port = port or (443 if self._https else 80)
        self._timeout = timeout
        self._context = context
        self._sock: socket.socket | None = None
        default = (self._https and self._port == 443) or (not self._https and self._port == 80)
        self._host_header = host if default else f"{host}:{self._port}"

    def request(self, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        """Send the request and read its answer; once more on a new connection when a
        kept-alive one turns out closed before any of the answer arrived (module doc)."""
        reused = self._sock is not None
        try:
            return self._exchange(path, headers, body)
        except _ClosedBeforeAnswer as closed:
            self.close()
            if not reused:
                raise closed.error from None
            try:
                return self._exchange(path, headers, body)
            except _ClosedBeforeAnswer as again:
                self.close()
                raise again.error from None
        except BaseException:
            self.close()  # a half-read answer leaves the connection unusable
            raise

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _exchange(self, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        """One request and its answer. Raises as urlopen does: a failure to connect or send
        as ``URLError``, an answer that never came as ``RemoteDisconnected``, a timeout as
        ``TimeoutError``; wrapped in :class:`_ClosedBeforeAnswer` when nothing was answered."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            sock = self._sock or self._connect()
            sock.sendall(head + body)
        except TimeoutError as err:
            raise urllib.error.URLError(err) from err
        except OSError as err:  # ssl.SSLError included: a stale TLS connection fails so
            raise _ClosedBeforeAnswer(urllib.error.URLError(err)) from err
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        received = False
        while not answer.complete:
            try:
                data = sock.recv(_CHUNK)
            except TimeoutError:
                raise
            except OSError as err:
                if received:
                    raise
                raise _ClosedBeforeAnswer(http.client.RemoteDisconnected(
                    f"{self._host} closed the connection without answering ({err})")) from err
            if not data:
                if not received:
                    raise _ClosedBeforeAnswer(http.client.RemoteDisconnected(
                        f"{self._host} closed the connection without answering"))
                if answer.headers_complete and answer.header("content-length") is None and \
                        "chunked" not in (answer.header("transfer-encoding") or "").lower():
                    answer.on_message_complete()  # a body delimited by the connection's end
                    self.close()
                    break
                raise ConnectionResetError(f"{self._host} closed the connection mid-answer")
            received = True
            parser.feed_data(data)
        answer.status = parser.get_status_code()
        try:
            answer.reason = http.HTTPStatus(answer.status).phrase
        except ValueError:
            answer.reason = ""
        if not answer.keep_alive:
            self.close()
        return answer

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._https:
            context = self._context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self._host)
        self._sock = sock
        return sock


class _ClosedBeforeAnswer(Exception):
    """The connection failed before any byte of the answer arrived; ``error`` is what urlopen
    would have raised."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header."""
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return None

