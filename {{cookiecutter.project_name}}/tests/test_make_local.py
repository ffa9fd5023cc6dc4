"""`python -m local` (what `make local` runs) as a user meets it: it starts, says where everything listens, the
printed example reaches the worker, a port in use is a clear error, and SIGTERM or Ctrl-C stops it with its ports
freed and no process left behind."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server can listen on the port again, as `make local` restarted would (SO_REUSEADDR: the closed
    connections' TIME_WAIT entries do not hold a port)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def start(synthesized, **env: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--template", str(synthesized.template_path)],
        cwd=PROJECT,
        env=os.environ | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal gives `make local`
    )
    process.lines = queue.Queue()  # read by a thread, so that waiting for a line can time out
    threading.Thread(target=lambda: [process.lines.put(line) for line in process.stdout], daemon=True).start()
    return process


def read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = process.lines.get(timeout=remaining).rstrip("\n")
        except queue.Empty:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s in:\n" + "\n".join(lines))


def iter_lines(process: subprocess.Popen[str]) -> list[str]:
    """Every line the (ended) process wrote."""
    time.sleep(0.2)  # the reader thread catches up
    lines = []
    while not process.lines.empty():
        lines.append(process.lines.get())
    return lines


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


@pytest.fixture
def ports(expected):
    """Free ports, a batching window of at most 1 s (a lone message would wait out a longer one), one worker."""
    return {
        "LOCAL_SQS_PORT": str(free_port()),
        "LOCAL_API_PORT": str(free_port()),
        "LOCAL_BATCHING_WINDOW": str(min(expected.batching_window, 1)),
        "LOCAL_MAX_CONCURRENCY": "1",  # one worker process is enough to see the example through
    }


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_make_local_serves_the_printed_example_then_stops_cleanly(synthesized, expected, ports, stop_signal):
    process = start(synthesized, **ports)
    try:
        banner = read_until(process, "Ctrl-C stops everything")
        text = "\n".join(banner)
        assert f"http://127.0.0.1:{ports['LOCAL_SQS_PORT']}" in text
        assert f"127.0.0.1:{ports['LOCAL_API_PORT']}" in text
        assert "walls       IAM as synthesized" in text
        assert f"(LOCAL_MAX_CONCURRENCY), timeout {expected.worker_timeout} s" in text  # the function's own
        # api_auth = iam: the local caller's credentials, and an example signed with them.
        assert ("Sign requests (SigV4" in text) == (expected.api_auth == "iam")
        environments = children_of(process.pid)
        assert environments, "no worker process started"
        example = banner[banner.index("Send a message:") + 1].strip()
        if example.startswith("curl"):
            sent = subprocess.run(shlex.split(example), capture_output=True, text=True, timeout=30)
            assert sent.returncode == 0, sent.stderr
            read_until(process, '"message":"Message processed"')
        # WebSocket: the printed command is an interactive client; test_local.py sends frames instead.
        os.killpg(process.pid, stop_signal) if stop_signal == signal.SIGINT else process.send_signal(stop_signal)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert port_is_free(int(ports["LOCAL_SQS_PORT"])) and port_is_free(int(ports["LOCAL_API_PORT"]))
    time.sleep(0.5)
    assert not [pid for pid in environments if Path(f"/proc/{pid}").exists()], "a worker process was left behind"


def test_a_port_in_use_is_a_clear_error_naming_the_variable(synthesized, ports):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(ports["LOCAL_API_PORT"])))
        taken.listen()
        process = start(synthesized, **ports)
        process.wait(timeout=60)
    output = "".join(iter_lines(process))
    assert process.returncode == 2
    assert f"127.0.0.1:{ports['LOCAL_API_PORT']} is already in use" in output
    assert "LOCAL_API_PORT" in output and "Traceback" not in output
    assert port_is_free(int(ports["LOCAL_SQS_PORT"]))


@pytest.mark.parametrize(("variable", "value"), [("LOCAL_VISIBILITY_TIMEOUT", "soon"), ("LOCAL_API_PORT", "70000")])
def test_a_bad_setting_is_a_clear_error_naming_it(synthesized, ports, variable, value):
    process = start(synthesized, **(ports | {variable: value}))
    process.wait(timeout=60)
    output = "".join(iter_lines(process))
    assert process.returncode == 2
    assert variable in output and repr(value) in output and "Traceback" not in output


def test_make_local_runs_the_emulator_for_the_stage_given():
    run = subprocess.run(["make", "-n", "local", "STAGE=qa"], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    [command] = [line for line in run.stdout.splitlines() if "-m local" in line]
    assert command.split("-m local", 1)[1].split() == ["--stage", "qa"]
