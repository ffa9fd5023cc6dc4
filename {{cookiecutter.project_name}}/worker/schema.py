"""The message schema (schemas/message.json, the one the REST API also checks at its gateway), checked before
logic.process sees a message. A message that is not JSON or breaks the schema can never succeed: it is rejected
(logic.RejectedMessage), and the handler sends it to the dead-letter queue at once with the reason.

The worker validates as API Gateway's models do, so that a body the REST gateway accepts is never rejected here for
the schema: JSON Schema draft 4 whatever `$schema` says (a keyword of a later draft, such as `const`, is ignored, as
API Gateway ignores it; `make synth` refuses a schema that uses one), no `format` check (API Gateway does not enforce
`format` either), and the message left as sent (no `default` filled in).

The schema sits beside this module in the deployed code (worker.py bundles it in) and in schemas/ at the root of
the repository (tests, `make local`). fastjsonschema (Powertools' validation extra, in its Lambda layer) compiles
it to Python once per execution environment (about 20 ms at a cold start, import included).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema

from logic import RejectedMessage

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = next(
    p for p in (HERE / "schemas" / "message.json", HERE.parent / "schemas" / "message.json") if p.exists()
)
DRAFT_4 = "http://json-schema.org/draft-04/schema#"  # the only draft API Gateway models take


def validator(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """A check of documents against `schema` with API Gateway's rules: draft 4, `format` not enforced, no defaults
    written into the document. It raises fastjsonschema.JsonSchemaValueException for a document that fails."""
    # fastjsonschema picks the draft from `$schema` (the newest it knows when there is none): draft 4 it is.
    return fastjsonschema.compile({**schema, "$schema": DRAFT_4}, use_formats=False, use_default=False)


_check = validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


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
