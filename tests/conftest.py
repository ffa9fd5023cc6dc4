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
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

TEMPLATE = Path(__file__).resolve().parent.parent
DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
PROD_LIKE = frozenset({"prod", "production", "live"})  # stages the generated README promises keep their data
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# Every flavour x queue type, and every pair of option values (flavour, queue type, auth, encryption, VPC, results
# topic, idempotency, stage kind, alarm e-mail) at least once: tests/test_coverage.py computes the pairs and the
# boundaries below; and every flavour with the worker in a VPC calling every AWS service an option adds.
# Both ends of every numeric range are baked (accepted) somewhere; the refused ones are in test_pre_gen_hook.py.
VARIANTS: dict[str, dict[str, str]] = {
    "http-standard-defaults": {},
    "http-fifo-none-customer-vpc": {
        "queue_type": "fifo",
        "api_auth": "none",
        "queue_encryption": "kms-customer",
        "worker_vpc": "new",
        "alarm_email": "ops@example.com",
        "api_throttling": "2400",  # the most a FIFO API may take (high-throughput FIFO quota)
        "api_burst": "1",
        "batch_size": "1",
        "dlq_retries": "1",
    },
    "http-standard-sqs-prod-windowed": {
        "result_topic": "sns",
        "idempotency": "dynamodb",
        "queue_encryption": "sqs-managed",
        "stage": "prod",
        "alarm_email": "ops@example.com",
        "api_throttling": "10000",
        "api_burst": "5000",
        "batch_size": "10000",
        "batching_window_seconds": "300",
        "dlq_retries": "1000",  # 1000 x 480 s visibility fits the 14-day retention
        "queue_retention_days": "14",
        "max_concurrency": "1000",
        "worker_memory_mb": "128",
    },
    "rest-standard-iam-customer": {
        "result_topic": "sns",
        "idempotency": "dynamodb",
        "project_name": "orders",  # sorts after local/ and ops/: the import order must not depend on the name
        "api_flavour": "rest",
        "queue_encryption": "kms-customer",
        "api_throttling": "1",
    },
    "rest-fifo-none-prod-vpc": {
        "api_flavour": "rest",
        "queue_type": "fifo",
        "api_auth": "none",
        "stage": "prod",
        "worker_vpc": "new",
        "queue_retention_days": "1",
        "worker_timeout_seconds": "1",
    },
    "rest-standard-none-sqs-vpc": {
        "api_flavour": "rest",
        "api_auth": "none",
        "queue_encryption": "sqs-managed",
        "worker_vpc": "new",
        "alarm_email": "ops@example.com",
    },
    "websocket-standard-none-vpc-longest-names": {
        "result_topic": "sns",
        "idempotency": "dynamodb",
        "project_name": "abcdefghij-klmnopqrst-uvwxyz0123",  # 32 characters, the longest allowed
        "stage": "integration1",  # 12 characters
        "api_flavour": "websocket",
        "api_auth": "none",
        "worker_vpc": "new",
        "alarm_email": "ops@example.com",
    },
    "websocket-fifo-iam-customer-prod-vpc": {
        "result_topic": "sns",
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
    # The worker in a VPC with every option that makes it call AWS (results topic, idempotency table), where all the
    # walls of `make local` meet (routes, IAM, a customer key); WebSocket's is websocket-standard-none-vpc-...
    "http-standard-walls-vpc": {
        "worker_vpc": "new",
        "result_topic": "sns",
        "idempotency": "dynamodb",
        "queue_encryption": "kms-customer",
    },
    "rest-standard-walls-vpc": {
        "api_flavour": "rest",
        "worker_vpc": "new",
        "result_topic": "sns",
        "idempotency": "dynamodb",
    },
    # FIFO with the worker in a VPC calling everything an option adds, through the customer key.
    "rest-fifo-walls-vpc-customer": {
        "api_flavour": "rest",
        "queue_type": "fifo",
        "worker_vpc": "new",
        "result_topic": "sns",
        "idempotency": "dynamodb",
        "queue_encryption": "kms-customer",
    },
    "websocket-fifo-none-sqs-no-vpc": {
        "idempotency": "dynamodb",
        "api_flavour": "websocket",
        "queue_type": "fifo",
        "api_auth": "none",
        "queue_encryption": "sqs-managed",
    },
}


def answers_of(overrides: dict[str, str]) -> dict[str, str]:
    """Every prompted answer as cookiecutter settles it without prompting: the overrides, and the defaults of the
    others, computed ones (e.g. the batching window) rendered from the answers before them."""
    context = generate_context(str(TEMPLATE / "cookiecutter.json"), extra_context=overrides)
    rendered = prompt_for_config(context, no_input=True)
    return {key: value for key, value in rendered.items() if not key.startswith("_")}


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


# The longest tests, longest first (alone on a quiet 2-core machine, 2026-11-30): the fresh install (~110 s, with its
# own `make install`), the variant whose poison messages each make 1000 receives before the DLQ (~105 s), the cruft
# update (~60 s), then every other variant's own suite (45-60 s).
SLOWEST_FIRST = (
    "tests/test_fresh_install.py::test_default_project_installs",
    "tests/test_bake.py::test_variant_bakes_and_its_own_suite_passes[http-standard-sqs-prod-windowed]",
    "tests/test_cruft.py::test_an_older_project_updates",
    "tests/test_bake.py::",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first, so that `pytest -n` does not end with one worker alone on a long test. `make test`
    passes `--maxschedchunk 1`, so each worker takes the next test of this order as it becomes free: by default
    xdist first hands each worker a run of consecutive tests, which put most of the suites on one worker."""

    def rank(item: pytest.Item) -> int:
        return next((n for n, prefix in enumerate(SLOWEST_FIRST) if item.nodeid.startswith(prefix)), len(SLOWEST_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order
