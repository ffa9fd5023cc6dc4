"""Refuse answers the generated stack could not deploy, before anything is written.

Every problem is reported at once, one line each, naming the variable, the value given and what is allowed.
Answers arrive as JSON data (see the bottom of this file), never pasted into Python source, so an answer holding
quotes, newlines or code can neither break nor run anything here.
"""

from __future__ import annotations

import json
import keyword
import re
import shlex
import sys

PROJECT_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
STAGE = re.compile(r"[a-z][a-z0-9]*")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
DIGITS = re.compile(r"[0-9]+")
# The project name becomes a Python package (hyphens -> underscores) beside these folders and modules, and is
# imported next to these libraries: a package of the same name would shadow them or collide on disk.
RESERVED_PACKAGE_NAMES = frozenset(
    {
        "app",
        "docs",
        "ops",
        "tests",
        "worker",
        "handler",
        "logic",
        "replies",
        "results",
        "idempotency",
        "schemas",
        "aws_cdk",
        "constructs",
        "cdk_nag",
        "jsii",
        "boto3",
        "botocore",
        "moto",
        "airspeed",
        "cfnlint",
        "pytest",
        "aws_lambda_powertools",
        "jsonschema",
    }
)

# name -> (lowest, highest), inclusive; the ranges of DESIGN.md (limits of API Gateway, SQS and Lambda).
INTEGER_RANGES = {
    "api_throttling": (1, 10000),
    "api_burst": (1, 5000),
    "queue_retention_days": (1, 14),
    "batch_size": (1, 10000),
    "batching_window_seconds": (0, 300),
    "dlq_retries": (1, 1000),
    "max_concurrency": (2, 1000),
    "worker_timeout_seconds": (1, 900),
    "worker_memory_mb": (128, 10240),
}
CHOICES = {
    "api_flavour": ("http", "rest", "websocket"),
    "queue_type": ("standard", "fifo"),
    "api_auth": ("iam", "none"),
    "queue_encryption": ("kms-managed", "kms-customer", "sqs-managed"),
    "worker_vpc": ("none", "new"),
    "result_topic": ("none", "sns"),
    "idempotency": ("none", "dynamodb"),
}
FIFO_MAX_BATCH_SIZE = 10
UNWINDOWED_MAX_BATCH_SIZE = 10
SQS_MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 60 * 60
VISIBILITY_TIMEOUT_FACTOR = 6  # Lambda guidance: visibility timeout >= 6 x function timeout + batching window
CFN_DESCRIPTION_MAX = 1024
DAY_SECONDS = 24 * 60 * 60
SQS_MAX_RETENTION_DAYS = 14  # the dead-letter queue's retention
# SQS high-throughput FIFO: SendMessage calls per second per queue in most regions (more in some, e.g. 70,000 in
# us-east-1, us-west-2 and eu-west-1; SQS quotas). Behind an API throttled higher, sends beyond it would fail.
FIFO_SEND_QUOTA = 2400
# A standard queue's messages keep their first enqueue time in the dead-letter queue (FIFO resets it): warn when a
# dead-lettered message could have less than this many days left there.
DLQ_MIN_DAYS_LEFT = 3


def _integer(value: object) -> int | None:
    """The answer as an int, or None when it is not a plain non-negative whole number ('10', 10; not '1e3', True)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and DIGITS.fullmatch(value):
        return int(value)
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def check_fields(answers: dict) -> tuple[list[str], dict[str, int]]:
    """Per-field checks. Returns the problems and the integers that parsed and are in range."""
    problems: list[str] = []
    numbers: dict[str, int] = {}

    name = _text(answers.get("project_name", ""))
    package = name.replace("-", "_")
    if not (3 <= len(name) <= 32 and PROJECT_NAME.fullmatch(name)):
        problems.append(
            f"project_name: {name!r} is not allowed; use 3-32 characters: lower-case letters and digits, "
            "starting with a letter, words joined by single hyphens (e.g. 'orders-api')"
        )
    elif keyword.iskeyword(package) or package in RESERVED_PACKAGE_NAMES:
        problems.append(
            f"project_name: {name!r} is not allowed; its Python package {package!r} would clash with a Python "
            "keyword, a folder of the project or a library it imports (e.g. use 'orders-api')"
        )

    stage = _text(answers.get("stage", ""))
    if not (1 <= len(stage) <= 12 and STAGE.fullmatch(stage)):
        problems.append(
            f"stage: {stage!r} is not allowed; use 1-12 lower-case letters and digits, starting with a letter "
            "(e.g. 'dev', 'prod')"
        )

    description = _text(answers.get("description", ""))
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in description):  # line breaks included
        problems.append(
            f"description: {description!r} is not allowed; "
            "use one line of text without line breaks or control characters"
        )
    elif len(description.encode("utf-8")) > CFN_DESCRIPTION_MAX:
        problems.append(
            f"description: {len(description.encode('utf-8'))} bytes is too long; allowed: at most "
            f"{CFN_DESCRIPTION_MAX} bytes of UTF-8 (CloudFormation's limit)"
        )

    for key, allowed in CHOICES.items():
        value = answers.get(key)
        if value not in allowed:
            problems.append(f"{key}: {value!r} is not allowed; choose one of: {', '.join(allowed)}")

    for key, (low, high) in INTEGER_RANGES.items():
        value = answers.get(key)
        number = _integer(value)
        if number is None or not low <= number <= high:
            problems.append(f"{key}: {value!r} is not allowed; use a whole number from {low} to {high}")
        else:
            numbers[key] = number

    email = _text(answers.get("alarm_email", ""))
    if email and not (len(email) <= 254 and EMAIL.fullmatch(email)):
        problems.append(
            f"alarm_email: {email!r} is not an e-mail address; leave it empty or give one like ops@example.com"
        )
    return problems, numbers


def check_combinations(answers: dict, numbers: dict[str, int]) -> list[str]:
    """Rules between fields; each is checked only when the fields it reads are valid on their own."""
    problems: list[str] = []
    fifo = answers.get("queue_type") == "fifo"
    batch = numbers.get("batch_size")
    window = numbers.get("batching_window_seconds")
    timeout = numbers.get("worker_timeout_seconds")

    if fifo and batch is not None and batch > FIFO_MAX_BATCH_SIZE:
        problems.append(
            f"batch_size: {batch} is not allowed with queue_type 'fifo'; use 1 to {FIFO_MAX_BATCH_SIZE} "
            "(Lambda's limit for FIFO queues)"
        )
    if fifo and window:
        problems.append(
            f"batching_window_seconds: {window} is not allowed with queue_type 'fifo'; use 0 "
            "(Lambda allows no batching window on FIFO queues)"
        )
    if not fifo and batch is not None and batch > UNWINDOWED_MAX_BATCH_SIZE and window == 0:
        problems.append(
            f"batching_window_seconds: 0 is not allowed with batch_size {batch}; use 1 to 300 "
            f"(Lambda needs a batching window for batches larger than {UNWINDOWED_MAX_BATCH_SIZE})"
        )
    if timeout is not None and window is not None:
        visibility = VISIBILITY_TIMEOUT_FACTOR * timeout + window
        if visibility > SQS_MAX_VISIBILITY_TIMEOUT_SECONDS:
            problems.append(
                f"worker_timeout_seconds: {timeout} makes the queue visibility timeout {visibility} s "
                f"({VISIBILITY_TIMEOUT_FACTOR} x timeout + batching window); SQS allows at most "
                f"{SQS_MAX_VISIBILITY_TIMEOUT_SECONDS} s"
            )
        problems += _retry_budget(visibility, numbers.get("dlq_retries"), numbers.get("queue_retention_days"))
    rate = numbers.get("api_throttling")
    if fifo and rate is not None and rate > FIFO_SEND_QUOTA:
        problems.append(
            f"api_throttling: {rate} is not allowed with queue_type 'fifo'; use 1 to {FIFO_SEND_QUOTA} (SQS "
            f"high-throughput FIFO takes {FIFO_SEND_QUOTA} sends/s per queue in most regions; where yours allows "
            "more, raise api_rate_limit in settings.py after generating)"
        )
    return problems


def _retry_budget(visibility: int, retries: int | None, retention_days: int | None) -> list[str]:
    """A message that always fails is hidden for a visibility timeout after each of its dlq_retries receives; if
    that adds up to the retention, it expires in the queue instead of reaching the dead-letter queue."""
    if retries is None or retention_days is None:
        return []
    budget, retention = visibility * retries, retention_days * DAY_SECONDS
    if budget < retention:
        return []
    return [
        f"dlq_retries: {retries} is not allowed here; {retries} receives x visibility timeout {visibility} s = "
        f"{budget} s reaches queue_retention_days {retention_days} ({retention} s), so a failing message would "
        f"expire before reaching the dead-letter queue; use dlq_retries 1 to {(retention - 1) // visibility}, "
        "a shorter worker_timeout_seconds or a longer queue_retention_days"
    ]


def warnings(answers: dict) -> list[str]:
    """Answers that deploy and work, with a consequence the user should know about."""
    retention = _integer(answers.get("queue_retention_days"))
    if answers.get("queue_type") != "standard" or retention is None:
        return []
    days_left = SQS_MAX_RETENTION_DAYS - retention
    if days_left >= DLQ_MIN_DAYS_LEFT:
        return []
    return [
        f"queue_retention_days: {retention} with a standard queue: a message's expiry counts from when it was "
        f"first sent, also in the dead-letter queue ({SQS_MAX_RETENTION_DAYS} days), so a message that fails late "
        f"in its life may stay there only {days_left} day(s); use {SQS_MAX_RETENTION_DAYS - DLQ_MIN_DAYS_LEFT} days "
        "or less to keep failed messages at least "
        f"{DLQ_MIN_DAYS_LEFT} days"
    ]


def validate(answers: dict) -> list[str]:
    """All problems with the answers, one line each; empty when the answers are good."""
    problems, numbers = check_fields(answers)
    return problems + check_combinations(answers, numbers)


def rerun_command(answers: dict, problems: list[str]) -> str:
    """One command that runs the template again with every answer given, the refused ones marked to fix, so that
    nothing has to be typed twice (each problem starts with the name of the answer to change)."""
    refused = {problem.split(":", 1)[0] for problem in problems}
    command = ["cookiecutter", str(answers.get("_template", "<template>")), "--no-input"]
    if answers.get("_output_dir") not in (None, "", "."):
        command += ["--output-dir", str(answers["_output_dir"])]
    for key, value in answers.items():
        if key.startswith("_"):  # computed variables and cookiecutter's own (_template, _output_dir, ...)
            continue
        value = _text(value)
        command.append(f"{key}=<FIX: {value}>" if key in refused else f"{key}={value}")
    return " ".join(shlex.quote(part) for part in command)


def main(answers: dict) -> int:
    problems = validate(answers)
    if not problems:
        for warning in warnings(answers):
            print(f"WARNING: {warning}", file=sys.stderr)
        return 0
    print(f"ERROR: {len(problems)} answer(s) cannot be used; nothing was generated:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print("To run again with every answer you gave, fix the ones marked FIX in:", file=sys.stderr)
    print(f"  {rerun_command(answers, problems)}", file=sys.stderr)
    print("(cookiecutter then prints its own traceback for the stopped hook; the problems are above.)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    # tojson escapes quotes and backslashes, so the raw string always holds valid JSON of the answers.
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}""")))
