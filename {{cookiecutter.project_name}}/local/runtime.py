"""One Lambda execution environment: a process of its own, started in worker/ with the function's environment.

It imports the handler once (the cold start) and then invokes it for each event the poller writes to its stdin, one
JSON line per event; each outcome goes back as one JSON line on the file descriptor named on the command line.
Module state (the Powertools processor, boto3 clients) lives on between invocations, as in a warm Lambda.
Usage (by local.poller): python -m local.runtime <module.function> <result fd> <function name> <memory MB> <timeout s>
"""

from __future__ import annotations

import importlib
import io
import json
import os
import signal
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field


@dataclass
class Context:
    """The parts of Lambda's context object that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{os.environ['AWS_REGION']}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


LINE_BYTES = 1 << 20  # a log line up to this size reaches the shared output in one write


def whole_lines(fd: int) -> io.TextIOWrapper:
    """A text stream on `fd` that writes each line, newline included, with one write(). The environments share one
    output, where a line must not split another's; unbuffered, print() writes its text and its newline apart."""
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(io.BufferedWriter(raw, LINE_BYTES), encoding="utf-8", line_buffering=True)


def _trace(error: BaseException) -> list[str]:
    return traceback.format_tb(error.__traceback__)[-3:]


def main(argv: list[str]) -> None:
    handler, result_fd, function_name, memory, timeout = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the emulator stops us
    sys.stdout, sys.stderr = whole_lines(1), whole_lines(2)
    sys.path.insert(0, os.getcwd())  # worker/, as /var/task in Lambda
    module_name, attribute = handler.rsplit(".", 1)
    function = getattr(importlib.import_module(module_name), attribute)
    with os.fdopen(int(result_fd), "w", encoding="utf-8") as results:
        results.write(json.dumps({"ready": True}) + "\n")  # the cold start is over
        results.flush()
        while line := sys.stdin.readline():
            context = Context(function_name, int(memory), int(timeout))
            try:
                outcome = {"response": function(json.loads(line), context)}
            except Exception as error:  # the invocation's error, logged as Lambda's Python runtime logs it
                outcome = {"errorType": type(error).__name__, "errorMessage": str(error).split("\n")[0]}
                print(json.dumps(outcome | {"requestId": context.aws_request_id, "stackTrace": _trace(error)}))
            sys.stdout.flush()
            results.write(json.dumps(outcome, default=str) + "\n")
            results.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
