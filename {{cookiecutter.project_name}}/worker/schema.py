"""The message schema (schemas/message.json, the one the REST API also checks at its gateway), checked before
logic.process sees a message. A message that is not JSON or breaks the schema can never succeed: it is rejected
(logic.RejectedMessage), and the handler sends it to the dead-letter queue at once with the reason.

The schema sits beside this module in the deployed code (worker.py bundles it in) and in schemas/ at the root of
the repository (tests, `make local`). fastjsonschema (Powertools' validation extra, in its Lambda layer) compiles
it to Python once per execution environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastjsonschema

from logic import RejectedMessage

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = next(
    p for p in (HERE / "schemas" / "message.json", HERE.parent / "schemas" / "message.json") if p.exists()
)
_check = fastjsonschema.compile(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def parse(body: str) -> Any:
    """The message in `body`, valid against the schema; RejectedMessage, naming the problem, if it is not."""
    try:
        message = json.loads(body)
    except ValueError as error:
        raise RejectedMessage(f"not JSON: {error}") from None
    try:
        _check(message)
    except fastjsonschema.JsonSchemaValueException as error:
        raise RejectedMessage(f"schema {SCHEMA_FILE.name}: {error.message}") from None
    return message
