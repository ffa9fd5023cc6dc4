"""API Gateway's mapping-template engine in Python: the VTL templates of the synthesized stack, rendered as API
Gateway renders them.

airspeed renders Velocity; `$input`, `$util` and `$context` are the Python stand-ins below, with the methods the
templates call. `make local` renders the REST and WebSocket request templates (and REST's response templates)
with them, and the contract tests render the same templates with the same objects.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
import uuid
from typing import Any

import airspeed

# --- $input, $util, $context -----------------------------------------------------------------------------------------


class JavaString(str):
    """A str with the java.lang.String methods templates call (on $input.body, say)."""

    def trim(self) -> JavaString:
        return JavaString(self.strip("".join(map(chr, range(33)))))  # Java trims code points <= U+0020 only

    def startsWith(self, prefix: str) -> bool:  # noqa: N802 (Java names)
        return self.startswith(prefix)

    def contains(self, text: str) -> bool:
        return text in self

    def length(self) -> int:
        return len(self.encode("utf-16-le")) // 2  # Java counts UTF-16 code units

    def isEmpty(self) -> bool:  # noqa: N802
        return not self

    def matches(self, regex: str) -> bool:
        return re.fullmatch(regex, self, flags=re.DOTALL) is not None

    def replaceAll(self, regex: str, replacement: str) -> JavaString:  # noqa: N802
        return JavaString(re.sub(regex, re.sub(r"\$(\d)", r"\\\1", replacement), self))


class UnparsableBody(Exception):
    """API Gateway refuses the request: 'Could not parse request body into json'."""


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise UnparsableBody(str(error)) from error


def json_path(document: Any, path: str) -> Any:
    """The JSONPath subset the templates use: `$` and `$.a.b` (a missing key is null, as in API Gateway)."""
    if not re.fullmatch(r"\$(\.\w+)*", path):
        raise AssertionError(f"template uses a JSONPath these tests do not know: {path}")
    for key in path.split(".")[1:]:
        document = document.get(key) if isinstance(document, dict) else None
    return document


def url_encode(text: str) -> str:
    """Java's URLEncoder.encode(text, "UTF-8"), which is $util.urlEncode: keeps A-Z a-z 0-9 . - * _, space -> '+'."""
    return urllib.parse.quote_plus(str(text), safe="*").replace("~", "%7E")  # Python keeps '~'; Java does not


class Input:
    """$input: the body (of the request, or of SQS's answer in a response template), JSONPath, and parameters."""

    def __init__(self, body: str, headers: dict[str, str] | None = None) -> None:
        self.body = JavaString(body)
        self._headers = headers or {}

    def path(self, path: str) -> Any:
        value = json_path(parse_json(self.body), path)
        return JavaString(value) if isinstance(value, str) else value

    def json(self, path: str) -> str:
        return json.dumps(json_path(parse_json(self.body), path), ensure_ascii=False)

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return {"path": {}, "querystring": {}, "header": self._headers}
        # Path, then query string, then header (these APIs have neither of the first two); HTTP header names are
        # case-insensitive.
        return next((value for key, value in self._headers.items() if key.lower() == name.lower()), "")


class Util:
    """$util: the functions the templates may call."""

    @staticmethod
    def urlEncode(value: str) -> str:  # noqa: N802 (VTL names)
        return url_encode(value)

    @staticmethod
    def urlDecode(value: str) -> str:  # noqa: N802
        return urllib.parse.unquote_plus(str(value))

    @staticmethod
    def escapeJavaScript(value: str) -> str:  # noqa: N802
        # Java's StringEscapeUtils.escapeJavaScript: JSON string escapes, plus \' and \/
        escapes = {"\\": "\\\\", '"': '\\"', "'": "\\'", "/": "\\/", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
        escapes |= {"\b": "\\b", "\f": "\\f"}
        return "".join(escapes.get(ch, ch if ord(ch) >= 32 else f"\\u{ord(ch):04x}") for ch in str(value))

    @staticmethod
    def parseJson(value: str) -> Any:  # noqa: N802
        return parse_json(value)


def rest_context(request_id: str, *, stage: str = "dev", resource_path: str = "/messages") -> dict[str, Any]:
    """$context of a REST API request. A response template may set responseOverride.status."""
    return {
        "requestId": request_id,
        "extendedRequestId": request_id,
        "stage": stage,
        "httpMethod": "POST",
        "resourcePath": resource_path,
        "responseOverride": {},
    }


def websocket_context(
    connection_id: str, request_id: str, *, stage: str = "dev", connected_at: int = 0
) -> dict[str, Any]:
    """$context of a WebSocket frame on $default."""
    return {
        "connectionId": connection_id,
        "requestId": request_id,
        "extendedRequestId": request_id,
        "messageId": new_id(),
        "routeKey": "$default",
        "eventType": "MESSAGE",
        "stage": stage,
        "apiId": "local",
        "domainName": "127.0.0.1",
        "connectedAt": connected_at,
        "requestTimeEpoch": connected_at,
        "identity": {"sourceIp": "127.0.0.1"},
    }


def new_id() -> str:
    """An id shaped like API Gateway's connection and message ids: base64 of 11 random bytes, 16 characters."""
    return base64.b64encode(uuid.uuid4().bytes[:11]).decode("ascii")


def render(template: str, body: str, *, context: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    """The template's output for this body. `context` is $context; read responseOverride from it afterwards."""
    return airspeed.Template(template).merge({"input": Input(body, headers), "util": Util(), "context": context})


def integration_headers(request_parameters: dict[str, Any]) -> dict[str, str]:
    """The static headers an integration's RequestParameters add ("integration.request.header.X": "'value'")."""
    prefix = "integration.request.header."
    return {
        name.removeprefix(prefix): value.strip("'")
        for name, value in request_parameters.items()
        if name.startswith(prefix) and isinstance(value, str) and value.startswith("'")
    }
