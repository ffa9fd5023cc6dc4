"""The WebSocket API, locally: a WebSocket at `/` whose frames go through the integrations as synthesized, and the
@connections endpoint the worker replies through.

Every frame takes the route API Gateway would select (the one its `action` field names if the API has it, else
`$default`), is rendered with that route's synthesized request template (the connection id, request id and route
key as API Gateway sets them) and POSTed to the local SQS with the integration's headers, one frame after the other
per connection.
A frame over the stage throttle, one the template cannot take, or one SQS refuses gets API Gateway's error frame
(`message`, `connectionId`, `requestId`) instead. The worker's CONNECTIONS_ENDPOINT points at a local @connections
endpoint that writes to the open socket, or answers 410 GoneException once the client has left.
IAM auth on $connect is not checked.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from . import sigv4, vtl
from .assembly import Assembly, role_id
from .serving import EXAMPLE_BODY, JsonRequestHandler, LocalHttpServer, throttle_of
from .sqs import ACCOUNT, HOST, REGION, Answer, LocalSqs, ensure_free
from .walls import HttpRequest, Walls, credentials_of

REPLY_GRANT = {"Worker": "websocket_api.py `connect_worker` (the worker's reply policy)"}

VARIABLE = "LOCAL_API_PORT"
TEMPLATE_KEY = "$default"
DEFAULT_ROUTE = "$default"
BODY = "$request.body"  # the route selection expressions understood here: $request.body.<field>[.<field>...]


@dataclass(frozen=True)
class Integration:
    """What a route's SQS integration does with a frame: render this template, POST it to this queue."""

    template: str
    queue_name: str
    headers: dict[str, str]
    credentials: dict[str, str]  # the integration role's local credentials (local/walls.py)


def sqs_integrations(assembly: Assembly) -> dict[str, Integration]:
    """Route key -> its SQS integration ($default and the named routes; $connect and $disconnect are mocks)."""
    found = {}
    for _, route in assembly.of_type("AWS::ApiGatewayV2::Route"):
        # Target: {"Fn::Join": ["", ["integrations/", {"Ref": <integration>}]]}
        integration = assembly.properties(route["Target"]["Fn::Join"][1][-1]["Ref"])
        if integration["IntegrationType"] == "AWS":
            found[route["RouteKey"]] = Integration(
                template=integration["RequestTemplates"][TEMPLATE_KEY],
                queue_name=assembly.integration_queue_name(integration["IntegrationUri"]),
                headers=vtl.integration_headers(integration.get("RequestParameters", {})),
                credentials=credentials_of(role_id(integration["CredentialsArn"])),
            )
    return found


class Client:
    """A client connection that collects every frame it receives."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self._open = ExitStack()  # websockets wants its connections used as context managers
        self.connection = self._open.enter_context(connect(url, additional_headers=headers))
        self.received: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for frame in self.connection:
                self.received.append(frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace"))
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self._open.close()
        self._reader.join()


class WebSocketApi:
    name = "WebSocket API"

    def __init__(self, assembly: Assembly, sqs: LocalSqs, port: int, *, log: Any = print) -> None:
        [connect_route] = [r for _, r in assembly.of_type("AWS::ApiGatewayV2::Route") if r["RouteKey"] == "$connect"]
        self.auth = connect_route.get("AuthorizationType", "NONE")
        self.routes = sqs_integrations(assembly)
        selection = assembly.only("AWS::ApiGatewayV2::Api")["RouteSelectionExpression"]
        if not selection.startswith(f"{BODY}."):
            raise ValueError(f"route selection expression {selection!r}: only {BODY}.<field> is emulated")
        self.selection_path = "$" + selection.removeprefix(BODY)  # JSONPath into the frame, e.g. $.action
        stage = assembly.only("AWS::ApiGatewayV2::Stage")
        self.stage = stage["StageName"]
        self.throttle = throttle_of(stage["DefaultRouteSettings"])
        self.sqs, self.log = sqs, log
        # The worker's replies are decided by its policies too (execute-api:ManageConnections).
        self.walls = Walls(assembly.json, account=ACCOUNT, region=REGION, hints=REPLY_GRANT)
        self.connections: dict[str, ServerConnection] = {}
        self._clients: dict[str, Client] = {}

        ensure_free(port, VARIABLE)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="websocket-api", daemon=True)
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._serve(port), self.loop).result(timeout=10)
        bound = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://{HOST}:{bound}/"
        self.callbacks = LocalHttpServer(self._connections_handler(), 0, variable="(none)")

    async def _serve(self, port: int) -> Any:
        return await serve(self._session, HOST, port, process_request=self._on_connect)

    def _on_connect(self, connection: ServerConnection, request: Any) -> Any:
        if self.auth == "AWS_IAM":  # api_auth = iam: the handshake is signed (local/sigv4.py)
            url = f"http://{request.headers.get('Host', HOST)}{request.path}"
            headers = dict(request.headers.raw_items())
            resource, granted = sigv4.method_arn(self.stage, "$connect"), sigv4.method_arn("*", "$connect")
            if sigv4.check("GET", url, headers, b"", resource=resource, granted=granted):
                return connection.respond(403, "Forbidden\n")
        if not self.throttle.take():  # $connect counts against the stage throttle too
            return connection.respond(429, "Too Many Requests\n")
        return None

    async def _session(self, connection: ServerConnection) -> None:
        connection_id = vtl.new_id()
        connected_at = int(time.time() * 1000)
        self.connections[connection_id] = connection
        try:
            async for frame in connection:
                text = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
                request_id = str(uuid.uuid4())
                error = await self._queue(text, connection_id, request_id, connected_at)
                if error:
                    await connection.send(
                        json.dumps({"message": error, "connectionId": connection_id, "requestId": request_id})
                    )
        except ConnectionClosed:
            pass
        finally:
            del self.connections[connection_id]

    def route_of(self, frame: str) -> str:
        """The route API Gateway selects: the one the frame's `action` names if the API has it, else $default (also
        for a frame that is not a JSON object)."""
        try:
            action = vtl.json_path(json.loads(frame), self.selection_path)
        except ValueError:
            return DEFAULT_ROUTE
        return action if isinstance(action, str) and action in self.routes else DEFAULT_ROUTE

    async def _queue(self, frame: str, connection_id: str, request_id: str, connected_at: int) -> str | None:
        """Send one frame to SQS as its route's integration does; the error frame's message when it is not queued."""
        if not self.throttle.take():
            return "Too Many Requests"
        route_key = self.route_of(frame)
        integration = self.routes[route_key]
        context = vtl.websocket_context(connection_id, request_id, stage=self.stage, connected_at=connected_at)
        context["routeKey"] = route_key
        try:
            form = vtl.render(integration.template, frame, context=context)
        except Exception as error:  # e.g. a FIFO frame that starts like JSON but is not: API Gateway cannot map it
            self.log(f"websocket api: frame {request_id} not queued: the template failed ({error.__cause__ or error})")
            return "Internal server error"
        queue, headers = integration.queue_name, integration.headers
        answer = await self.loop.run_in_executor(None, self.sqs.post, queue, form, headers, integration.credentials)
        if answer.status >= 300:
            self.log(f"websocket api: frame {request_id} not queued: SQS answered {answer.status} {answer.body[:300]}")
            return "Internal server error"
        return None

    def _connections_handler(self) -> type[JsonRequestHandler]:
        api = self

        class Connections(JsonRequestHandler):
            """POST /<stage>/@connections/<id>: the body becomes one frame on that connection (PostToConnection)."""

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                data = self.body()
                prefix = f"/{api.stage}/@connections/"
                if not self.path.startswith(prefix):
                    return self.answer(404, {"message": "Not Found"})
                if refusal := api.walls.check(HttpRequest.of("POST", self.path, self.headers, data)):
                    api.sqs.refusals.append(refusal.line)
                    api.log(f"walls: {refusal.line}")
                    headers = {k: v for k, v in refusal.headers.items() if k != "Content-Type"}  # answer() sets it
                    return self.answer(refusal.status, refusal.body.decode("utf-8"), headers)
                connection = api.connections.get(urllib.parse.unquote(self.path.removeprefix(prefix)))
                if connection is None:
                    return self.answer(410, {"message": "Gone"}, {"x-amzn-ErrorType": "GoneException"})
                text = data.decode("utf-8", errors="replace")
                try:
                    asyncio.run_coroutine_threadsafe(connection.send(text), api.loop).result(timeout=10)
                except ConnectionClosed:
                    return self.answer(410, {"message": "Gone"}, {"x-amzn-ErrorType": "GoneException"})
                self.answer(200, "")

        return Connections

    def worker_environment(self) -> dict[str, str]:
        return {"CONNECTIONS_ENDPOINT": f"{self.callbacks.url}/{self.stage}"}

    def example(self, fifo: bool) -> str:
        client = "local.client" if self.auth == "AWS_IAM" else "websockets"  # local.client signs the handshake
        return f".venv/bin/python -m {client} {self.url}   # then type a frame, e.g. {EXAMPLE_BODY}"

    def send(self, body: str, *, group: str | None = None) -> Answer:
        """Send one frame as a client would, on one connection per `group` (on a FIFO queue a connection is a
        message group). WebSocket has no answer per frame: replies and error frames are in `frames()`."""
        key = group or ""
        if key not in self._clients:
            http_url = self.url.replace("ws://", "http://")
            signed = sigv4.sign("GET", http_url, b"", {}) if self.auth == "AWS_IAM" else None
            self._clients[key] = Client(self.url, signed)
        self._clients[key].connection.send(body)
        return Answer(202, "")

    def frames(self) -> list[str]:
        """Every frame the clients of `send` have received so far (replies and error frames)."""
        return [frame for client in self._clients.values() for frame in client.received]

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self.callbacks.stop()

        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
