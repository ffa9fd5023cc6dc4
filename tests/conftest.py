"""Shared pieces of the template's tests: the option combinations every bake test runs, and small helpers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

TEMPLATE = Path(__file__).resolve().parent.parent
DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# Every flavour x queue type in full; every value of the other options appears, spread across them so that the
# risky pairs meet (VPC with each flavour and with iam; a customer key with each flavour; alarm e-mail with fifo).
VARIANTS: dict[str, dict[str, str]] = {
    "http-standard-defaults": {},
    "http-fifo-none-customer-vpc": {
        "queue_type": "fifo",
        "api_auth": "none",
        "queue_encryption": "kms-customer",
        "worker_vpc": "new",
    },
    "http-standard-sqs-prod-windowed": {
        "queue_encryption": "sqs-managed",
        "stage": "prod",
        "batch_size": "500",
        "batching_window_seconds": "20",
        "dlq_retries": "1000",
        "alarm_email": "ops@example.com",
    },
    "rest-standard-iam-customer": {"api_flavour": "rest", "queue_encryption": "kms-customer"},
    "rest-fifo-none-prod-vpc": {
        "api_flavour": "rest",
        "queue_type": "fifo",
        "api_auth": "none",
        "stage": "prod",
        "worker_vpc": "new",
    },
    "websocket-standard-none-sqs-vpc": {
        "api_flavour": "websocket",
        "api_auth": "none",
        "queue_encryption": "sqs-managed",
        "worker_vpc": "new",
        "alarm_email": "ops@example.com",
    },
    "websocket-fifo-iam-customer-prod-vpc": {
        "api_flavour": "websocket",
        "queue_type": "fifo",
        "queue_encryption": "kms-customer",
        "stage": "prod",
        "worker_vpc": "new",
        "alarm_email": "ops@example.com",
        "max_concurrency": "2",
        "worker_timeout_seconds": "900",
        "worker_memory_mb": "10240",
        "dlq_retries": "223",  # the most that fits: 224 x 5400 s visibility = 14 days, the retention
        "queue_retention_days": "14",
    },
}


def load_hook(name: str) -> ModuleType:
    """Import a hook as a module (its Jinja line only runs under `__main__`)."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_project(project: Path, *command: str) -> subprocess.CompletedProcess:
    """A tool of this venv (it holds every pin of the generated pyproject.toml), run inside a baked project."""
    return run_in_project_env(project, {}, *command)


def run_in_project_env(project: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=project,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="session")
def defaults() -> dict:
    return DEFAULTS
