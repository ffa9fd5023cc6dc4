"""The local SQS server process (local.sqs.LocalSqs starts it): moto's server application on 127.0.0.1, with the
patches of moto 5.2 (pinned) that make it behave as SQS does where the emulator needs it, and run fast enough.

Usage: python -m local.sqs_server <port> [walls.json] (port 0: any free port). It prints the port once it listens,
and serves until its stdin closes. With walls.json (local/walls.py: the synthesized template's path, the account,
where each role's grants belong), requests signed as one of the stack's roles are decided by its policies first; each
refusal is answered as AWS answers it and printed on stderr, one line.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import moto.sqs.models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs.models import Message, Queue, SQSBackend
from werkzeug.test import EnvironBuilder, run_wsgi_app

from local.serving import ThreadingServer
from local.walls import HttpRequest, Walls

HOST = "127.0.0.1"


def _groups_in_flight(queue: Queue) -> set[str]:
    """The FIFO message groups with a message in flight *now*. moto 5.2 also counts messages whose visibility
    timeout has run out but that no receive has looked at since; two messages of a group that time out together
    then come back second-first (the first is skipped as "in flight" while the second is taken). SQS keeps the
    order, so this emulator asks moto for the groups SQS would see."""
    return {m.group_id for m in queue.pending_messages if m.group_id is not None and not m.visible}


def _within_retention(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's own check, without computing every attribute of the queue (counting all its messages) for each message
    it hands out, which made a receive from a queue of a hundred messages take ~100 ms."""
    retention_seconds = int(backend.get_queue(queue_name).message_retention_period)
    return retention_seconds + message.sent_timestamp / 1000 > time.time()  # type: ignore[operator]


# moto's state is not safe to change from two threads at once (a delete rebuilds a queue's list of messages, and a
# message sent meanwhile was lost; two receives could hand out one message twice): one request at a time. A waiting
# long poll lets the others run, and is woken when a message is added or made visible.
_serial = threading.Condition()
_moto_receive = SQSBackend.receive_message


def _receive(
    backend: SQSBackend,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Message]:
    """moto's ReceiveMessage, long-polling as SQS does: it returns as soon as a message is there, also one whose
    visibility timeout or delay has just ended (moto waits for a new message only, and holds up everything else)."""
    queue = backend.get_queue(queue_name)
    deadline = time.time() + wait_seconds_timeout
    while True:
        messages = _moto_receive(backend, queue_name, count, 0, visibility_timeout, message_attribute_names)
        now = time.time()
        if messages or now >= deadline:
            return messages
        hidden_until = [t / 1000 for m in queue._messages for t in (m.visible_at, m.delayed_until) if t / 1000 > now]
        _serial.wait(max(0.01, min([deadline, *hidden_until]) - now))  # the request lock is let go meanwhile


_moto_add_message = Queue.add_message
_moto_change_message_visibility = SQSBackend.change_message_visibility


def _add_message(queue: Queue, message: Message) -> None:
    _moto_add_message(queue, message)
    _serial.notify_all()  # a long poll waiting may take it


def _change_message_visibility(
    backend: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    _moto_change_message_visibility(backend, queue_name, receipt_handle, visibility_timeout)
    _serial.notify_all()  # visible again at once, with a timeout of 0


def _now_millis() -> float:
    return time.time() * 1000


# Which messages are visible, in flight or delayed, counted with one read of the clock rather than two per message:
# moto counts all three for every SendMessage (its queue attributes) and lists the visible ones for every receive.
def _visible(queue: Queue) -> list[Message]:
    now = _now_millis()
    return [m for m in queue._messages if m.visible_at < now and m.delayed_until <= now]


def _in_flight(queue: Queue) -> int:
    now = _now_millis()
    return sum(m.visible_at >= now for m in queue._messages)


def _delayed(queue: Queue) -> int:
    now = _now_millis()
    return sum(m.delayed_until > now for m in queue._messages)


_moto_backend_for_host = DomainDispatcherApplication.get_backend_for_host


def _backend_for_host(app: DomainDispatcherApplication, host: str | None, known: dict = {}) -> Any:  # noqa: B006
    """moto's backend for a host name, looked up once per name: moto lists its package folders (a listdir and ~200
    stats) and tries ~200 URL patterns for every request, under a lock all requests share."""
    if host not in known:
        known[host] = _moto_backend_for_host(app, host)
    return known[host]


Queue.pending_message_groups = property(_groups_in_flight)  # type: ignore[assignment]
SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
SQSBackend.receive_message = _receive  # type: ignore[method-assign]
Queue.add_message = _add_message  # type: ignore[method-assign]
SQSBackend.change_message_visibility = _change_message_visibility  # type: ignore[method-assign]
# Every SendMessage reads all of the queue's attributes, each name converted from CamelCase anew.
moto.sqs.models.camelcase_to_underscores = functools.lru_cache(maxsize=None)(moto.sqs.models.camelcase_to_underscores)
Queue.messages = property(_visible)  # type: ignore[assignment]
Queue.approximate_number_of_messages_not_visible = property(_in_flight)  # type: ignore[assignment]
Queue.approximate_number_of_messages_delayed = property(_delayed)  # type: ignore[assignment]
# moto reads the clock through datetime (~5 us a call), for every message of the queue at every request.
moto.sqs.models.unix_time = time.time
moto.sqs.models.unix_time_millis = _now_millis
DomainDispatcherApplication.get_backend_for_host = _backend_for_host  # type: ignore[method-assign]


class MotoHandler(BaseHTTPRequestHandler):
    """moto's server application behind a connection that stays open between requests (HTTP/1.1 keep-alive), as
    SQS's endpoint and API Gateway's integrations keep theirs. werkzeug's development server, which moto's own server
    uses, closes every connection after one request, then waits 10 ms for anything left to read: a new connection,
    a new server thread and that wait for every request cost more than the request itself."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else the body, written after the headers, waits for the client's delayed ACK
    app = DomainDispatcherApplication(create_backend_app)  # one per process, as moto's backends are
    walls: Walls | None = None

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            self.close_connection = True
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = HttpRequest.of(self.command, self.path, self.headers, body)
        refusal = self.walls.check(request) if self.walls else None
        if refusal is not None:
            print(f"walls: {refusal.line}", file=sys.stderr, flush=True)
            status, headers, data = f"{refusal.status} Refused", refusal.headers, refusal.body
        else:
            environ = EnvironBuilder(
                path=request.path,
                query_string=request.query,
                method=self.command,
                headers=list(self.headers.items()),
                data=body,
            ).get_environ()
            with _serial:
                chunks, status, headers = run_wsgi_app(self.app, environ, buffered=True)
            data = b"".join(chunks)
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", headers.get("Content-Length") or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # one line per request would drown the worker's own lines


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the emulator stops us
    if len(argv) > 1:
        spec = json.loads(open(argv[1]).read())
        template = json.loads(open(spec["template"]).read())
        MotoHandler.walls = Walls(template, account=spec["account"], region=spec["region"], hints=spec["hints"])
    server = ThreadingServer((HOST, int(argv[0])), MotoHandler)  # a kept connection's thread waits until the end
    threading.Thread(target=server.serve_forever, name="sqs", daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the emulator closes it, or ends
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
