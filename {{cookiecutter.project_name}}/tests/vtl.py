"""What the REST and WebSocket contract tests share: hostile bodies, and readings of a rendered SendMessage form.

The templates are rendered by the engine `make local` uses (local/vtl.py: airspeed with Python stand-ins for API
Gateway's `$input`, `$util` and `$context`); a rendered form is decoded the way SQS decodes a query request
(`form_fields`) and POSTed, as the integration would POST it, to the local SQS (conftest's `local_queue`).
"""

from __future__ import annotations

import json
import re

from local.sqs import form_fields
from local.vtl import UnparsableBody, integration_headers, render, rest_context, websocket_context

__all__ = ["UnparsableBody", "form_fields", "integration_headers", "render", "rest_context", "websocket_context"]

# Bodies that break a naive template: form syntax, URL-reserved characters, escapes, raw control whitespace,
# non-ASCII, VTL look-alikes, and one large enough to show nothing is cut. Each must reach SQS byte for byte.
JSON_OBJECT_BODIES = {
    "form-syntax": '{"q": "a=1&b=2+3%20&c=%26", "plus": "+", "pct": "100%"}',
    "url-reserved": '{"u": "https://x.test/a?b=c&d=e#f~g*h;i,j:k@l$m!n(o)p/q"}',
    "quotes-and-backslashes": '{"say": "\\"hi\\"", "path": "C:\\\\temp\\\\new", "single": "it\'s"}',
    "json-escapes": '{"text": "line 1\\nline 2\\tTabbed \\u00e9 \\ud83d\\ude80"}',
    "raw-control-whitespace": '{\n\t"pretty": true,\r\n\t"list": [1, 2]\n}\r\n',
    "non-ascii": '{"name": "Zoë Ñandú Ærøskøbing 漢字 Привет", "rtl": "שלום", "emoji": "🚀🎉👩‍👩‍👧 \U0001f9ea"}',
    "velocity-lookalikes": (
        '{"t": "$input.body $context.requestId #set($x = 1) ## not a comment ${x} $util.urlEncode(1)"}'
    ),
    "large-200kb": json.dumps({"blob": 'x&=+%é"\\\n🚀' * 20000}),
}
# A WebSocket frame need not be JSON at all.
ANY_TEXT_BODIES = JSON_OBJECT_BODIES | {
    "bare-ampersands-and-equals": "&&==&=&",
    "plus-and-percent": "+ %2B %% %zz 100%",
    "leading-and-trailing-spaces": "   spaced out   ",
    "json-array": "[1, 2, 3]",
    "not-json-at-all": "plain text & more = 100% + love",
}


def is_one_line_of_ascii(form: str) -> bool:
    """A newline or space in the form would become part of a value; SQS wants the form percent-encoded."""
    return form.isascii() and form.isprintable() and " " not in form


def message_attributes(fields: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (data type, string value), from the numbered MessageAttribute.N.* fields."""
    numbers = sorted({m.group(1) for name in fields if (m := re.fullmatch(r"MessageAttribute\.(\d+)\.Name", name))})
    return {
        fields[f"MessageAttribute.{n}.Name"]: (
            fields[f"MessageAttribute.{n}.Value.DataType"],
            fields[f"MessageAttribute.{n}.Value.StringValue"],
        )
        for n in numbers
    }
