"""What every local API shares: the stage's throttle, and a small HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import sigv4
from .sqs import HOST, Answer, close_connections, ensure_free, post

EXAMPLE_BODY = '{"order_id": 42}'  # the message the printed example sends


class TokenBucket:
    """API Gateway's throttle as documented: a bucket of `burst` requests, refilled at `rate` per second; a request
    that finds it empty is refused (429). (AWS applies it per region and account too, and not exactly; see README.)"""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def throttle_of(route_settings: dict[str, Any]) -> TokenBucket:
    """The throttle of a stage's default route settings (HTTP, WebSocket) or method settings (REST)."""
    return TokenBucket(float(route_settings["ThrottlingRateLimit"]), int(route_settings["ThrottlingBurstLimit"]))


class JsonRequestHandler(BaseHTTPRequestHandler):
    """Reads a request body, answers JSON, and keeps the console for the worker's log lines."""

    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # else the body, written after the headers, waits for the client's delayed ACK

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # one line per request would drown the worker's own lines


class ThreadingServer(ThreadingHTTPServer):
    """A thread per connection, ended with the server; a listen backlog for a soak's many clients (the default 5 fills
    up on a loaded machine, and a refused connection costs a worker's SDK its connect timeout)."""

    request_queue_size = 128
    daemon_threads = True


class LocalHttpServer:
    """A threading HTTP server on 127.0.0.1:`port` (0: any free port), served from a thread of its own."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int, *, variable: str) -> None:
        ensure_free(port, variable)
        self.server = ThreadingServer((HOST, port), handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"http-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


def post_json(url: str, body: str, headers: dict[str, str]) -> Answer:
    """POST a JSON body; the status and body of the answer, whatever the status."""
    return post(url, body.encode("utf-8"), {"Content-Type": "application/json", **headers})


class PostMessagesApi:
    """What the HTTP and REST APIs share once served: `POST <url>` with a JSON body, one answer per request."""

    server: LocalHttpServer
    url: str
    path: str
    auth: str = "NONE"  # the method's or route's AuthorizationType as synthesized
    stage: str = "$default"

    def authenticate(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[str, str] | None:
        """api_auth = iam: API Gateway's SigV4 check and the caller's execute-api:Invoke (local/sigv4.py). None when
        the request goes on; else (why not, the method's ARN)."""
        if self.auth != "AWS_IAM":
            return None
        resource = sigv4.method_arn(self.stage, request.command, self.path)
        granted = sigv4.method_arn("*", "POST", self.path)
        url = f"http://{request.headers.get('Host', HOST)}{request.path}"
        headers = dict(request.headers.items())
        refused = sigv4.check(request.command, url, headers, body, resource=resource, granted=granted)
        return (refused, resource) if refused else None

    def worker_environment(self) -> dict[str, str]:
        return {}

    def example(self, fifo: bool) -> str:
        group = " -H 'X-Message-Group-Id: customer-42'" if fifo else ""
        signed = f" {sigv4.curl_flags()}" if self.auth == "AWS_IAM" else ""
        return f"curl -sS{signed} {self.url} -H 'Content-Type: application/json'{group} -d '{EXAMPLE_BODY}'"

    def send(self, body: str, *, group: str | None = None) -> Answer:
        """POST one message as a client would, signed with the local caller's credentials when the API takes SigV4
        (the tests and `python -m local.soak` use it)."""
        headers = {"Content-Type": "application/json"} | ({"X-Message-Group-Id": group} if group else {})
        data = body.encode("utf-8")
        if self.auth == "AWS_IAM":
            headers = sigv4.sign("POST", self.url, data, headers)
        return post(self.url, data, headers)

    def frames(self) -> list[str]:
        """What a WebSocket client would have received: nothing, over HTTP every answer comes with its request."""
        return []

    def stop(self) -> None:
        close_connections(self.url)
        self.server.stop()
