"""The whole pipeline on 127.0.0.1: local SQS, the API, and the pollers driving the worker; started and stopped as one.

Used by `make local` (local/__main__.py) and by the message-safety tests, which start it on free ports.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from {{ cookiecutter.__package_name }}.settings import ANSWERS

from . import sigv4
from .assembly import Assembly, Function
from .network import Blackhole, Routes, routes
from .poller import Poller
from .sqs import ACCOUNT, CREDENTIALS, REGION, LocalSqs, ensure_free
from .walls import environment_credentials

# The API of each flavour; the post-generation hook keeps only the module of the flavour chosen.
API_CLASSES = {"http": "HttpApi", "rest": "RestApi", "websocket": "WebSocketApi"}
DEFAULT_CONCURRENCY = 4  # execution environments at most, locally (each is a process); LOCAL_MAX_CONCURRENCY
# Credentials and settings of the caller's shell that must not reach the local worker: it talks to local
# endpoints only, never to an AWS account.
WITHHELD = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE")
# A connection with no route fails after the SDK's connect timeout; locally it is cut to this (said in the banner),
# so that a missing endpoint shows in seconds.
LOCAL_CONNECT_TIMEOUT_SECONDS = 0.5
PACKAGE = "{{ cookiecutter.__package_name }}"
# Where each role's grants belong, by the first part of its logical id (the construct that makes it).
GRANTS = {
    "Worker": f"{PACKAGE}/settings.py `worker_permissions` (the worker's role, {PACKAGE}/worker.py; README, "
    '"Adding a permission")',
    "Api": f"{PACKAGE}/{{ cookiecutter.__api_module }}.py (the API integration's role)",
}


@dataclass(frozen=True)
class Options:
    sqs_port: int = 9324
    api_port: int = 3000
    visibility_timeout: int = 2
    max_concurrency: int = DEFAULT_CONCURRENCY
    batching_window: int | None = None  # None: as synthesized
    stage: str | None = None
    keep_deliveries: bool = False  # the pollers' record of every record handed to the worker (tests, soak)
    # Tests about something other than time: the least an invocation may run. On a loaded 2-core machine a 1 s worker
    # times out at random, and its whole batch comes back. `make local` keeps the function's own timeout (0 here).
    timeout_floor: int = 0

    @classmethod
    def from_environment(cls, environ: dict[str, str], stage: str | None = None) -> Options:
        def number(name: str, default: int, low: int, high: int) -> int:
            text = environ.get(name, "") or str(default)
            if not text.isdigit() or not low <= int(text) <= high:
                raise ValueError(f"{name}: {text!r} is not allowed; use a whole number from {low} to {high}")
            return int(text)

        return cls(
            sqs_port=number("LOCAL_SQS_PORT", cls.sqs_port, 1, 65535),
            api_port=number("LOCAL_API_PORT", cls.api_port, 1, 65535),
            visibility_timeout=number("LOCAL_VISIBILITY_TIMEOUT", cls.visibility_timeout, 0, 43200),
            max_concurrency=number("LOCAL_MAX_CONCURRENCY", cls.max_concurrency, 1, 1000),
            batching_window=number("LOCAL_BATCHING_WINDOW", 0, 0, 300)
            if environ.get("LOCAL_BATCHING_WINDOW")
            else None,
            stage=stage,
        )


def create_resources(assembly: Assembly, sqs: LocalSqs, queue_urls: dict[str, str]) -> dict[str, str]:
    """The stack's other resources the worker talks to, in the same moto server: its SNS topics (each with a local
    queue `<topic>-local` subscribed, to read what was published) and DynamoDB tables. Logical id -> what a Ref to
    it gives (a queue's URL, a topic's ARN, a table's name)."""
    import boto3

    sns = boto3.client("sns", region_name=REGION, endpoint_url=sqs.endpoint, **CREDENTIALS)
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=sqs.endpoint, **CREDENTIALS)
    references = {logical_id: queue_urls[name] for logical_id, name in assembly.queue_ids().items()}
    for logical_id, name in assembly.topics().items():
        references[logical_id] = arn = sns.create_topic(Name=name)["TopicArn"]
        subscriber = sqs.client.create_queue(QueueName=f"{name}-local")["QueueUrl"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=sqs.arn(f"{name}-local"))
        queue_urls[f"{name}-local"] = subscriber
    for logical_id, table in assembly.tables().items():
        dynamodb.create_table(**table)
        references[logical_id] = table["TableName"]
    return references


def endpoints(network: Routes, local: str, blackhole: str) -> dict[str, str]:
    """Where the worker's AWS clients connect: the local server for every service it has a route to; the blackhole
    for the others (a worker in a VPC with no NAT and no endpoint for them)."""
    if not network.in_vpc or network.internet:
        return {"AWS_ENDPOINT_URL": local}
    return {"AWS_ENDPOINT_URL": blackhole} | {f"AWS_ENDPOINT_URL_{_service_id(s)}": local for s in network.services}


def _service_id(service: str) -> str:
    """The suffix of the SDK's service-specific endpoint variable: botocore's service id, e.g. DYNAMODB."""
    import botocore.session

    try:
        name = botocore.session.get_session().get_service_model(service).service_id
    except Exception:  # not a botocore service name (e.g. an endpoint-only service such as xray's daemon)
        name = service
    return str(name).replace(" ", "_").upper()


def worker_environment(
    function: Function,
    api: dict[str, str],
    sqs_endpoint: str,
    references: dict[str, str] | None = None,
    *,
    network: Routes | None = None,
    blackhole: str = "",
) -> dict[str, str]:
    """The function's environment as synthesized, on top of the caller's (their own variables pass through), with
    what only exists at deploy time (the @connections URL, a Ref to a queue, topic or table) pointed at the local
    endpoints and resources, the execution role's local credentials, and the routes of its network."""
    references = references or {}
    synthesized = {name: value for name, value in function.environment.items() if isinstance(value, str)}
    synthesized |= {
        name: references[value["Ref"]]
        for name, value in function.environment.items()
        if isinstance(value, dict) and value.get("Ref") in references
    }
    unresolved = set(function.environment) - set(synthesized) - set(api)
    if unresolved:
        raise ValueError(
            f"the emulator has no local value for the worker's environment variable(s) {sorted(unresolved)}"
        )
    caller = {name: value for name, value in os.environ.items() if name not in WITHHELD}
    network = network or Routes(in_vpc=False, internet=True, services=frozenset())
    if not network.internet:  # a public endpoint (the @connections API) needs a NAT gateway
        api = {name: blackhole if value.startswith("http") else value for name, value in api.items()}
    connect = float(synthesized.get("SDK_CONNECT_TIMEOUT_SECONDS", LOCAL_CONNECT_TIMEOUT_SECONDS))
    return (
        caller
        | synthesized
        | api
        | {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **environment_credentials(function.role),
            **endpoints(network, sqs_endpoint, blackhole),
            "SDK_CONNECT_TIMEOUT_SECONDS": str(min(connect, LOCAL_CONNECT_TIMEOUT_SECONDS)),
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        }
    )


class Emulator:
    def __init__(
        self,
        options: Options,
        *,
        assembly: Assembly | None = None,
        worker_output: IO[str] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        """`assembly`: a stack template already synthesized (the tests'); else cdk.out's, synthesized if stale."""
        self.options, self.worker_output, self.log = options, worker_output, log
        self.assembly = assembly
        self.settings = ANSWERS.for_stage(options.stage)
        self.sqs: LocalSqs | None = None
        self.api: Any = None
        self.poller: Poller | None = None
        self.blackhole: Blackhole | None = None
        self._walls_spec: Any = None

    def start(self) -> Emulator:
        options = self.options
        if self.assembly is None:
            self.assembly = Assembly.load(self.settings.stack_name, stage=options.stage, report=self.log)
        ensure_free(options.api_port, "LOCAL_API_PORT")  # both ports before anything starts
        ensure_free(options.sqs_port, "LOCAL_SQS_PORT")
        try:
            # The walls: requests signed as the stack's roles are decided by its policies (local/walls.py).
            self._walls_spec = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="walls-")
            spec = {"template": str(self.assembly.path), "account": ACCOUNT, "region": REGION, "hints": GRANTS}
            self._walls_spec.write(json.dumps(spec))
            self._walls_spec.flush()
            self.sqs = LocalSqs(options.sqs_port, walls=Path(self._walls_spec.name), log=self.log)
            self.queue_urls = self.sqs.create(self.assembly.queues(), visibility_timeout=options.visibility_timeout)
            self.references = create_resources(self.assembly, self.sqs, self.queue_urls)
            flavour = self.settings.api_flavour
            module = importlib.import_module(f"local.{flavour}_api")
            self.api = getattr(module, API_CLASSES[flavour])(self.assembly, self.sqs, options.api_port, log=self.log)
            self.source, self.function = self.assembly.event_source(), self.assembly.function()
            self.network = routes(self.assembly.json, self.function.logical_id)
            self.blackhole = Blackhole()
            if options.timeout_floor > self.function.timeout_seconds:
                self.function = dataclasses.replace(self.function, timeout_seconds=options.timeout_floor)
            if options.batching_window is not None:
                self.source = dataclasses.replace(self.source, batching_window_seconds=options.batching_window)
            self.concurrency = min(self.source.max_concurrency or 1000, options.max_concurrency)
            # The event source mapping polls with the function's execution role.
            mapping_client = self.sqs.client_as(self.function.role)
            environment = worker_environment(
                self.function,
                self.api.worker_environment(),
                self.sqs.endpoint,
                self.references,
                network=self.network,
                blackhole=self.blackhole.url,
            )
            self.poller = Poller(
                mapping_client,
                self.queue_urls[self.source.queue],
                self.sqs.arn(self.source.queue),
                self.source,
                self.function,
                environment,
                concurrency=self.concurrency,
                visibility_timeout=options.visibility_timeout,
                keep_deliveries=options.keep_deliveries,
                stdout=self.worker_output,
                log=self.log,
            ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop what was started, in reverse order; the ports are free when this returns."""
        if self.poller is not None:
            self.poller.stop()
        if self.api is not None:
            self.api.stop()
        if self.sqs is not None:
            self.sqs.stop()
        if self.blackhole is not None:
            self.blackhole.close()
        if self._walls_spec is not None:
            self._walls_spec.close()
        self.poller = self.api = self.sqs = self.blackhole = self._walls_spec = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def banner(self) -> list[str]:
        """What `make local` prints at start: where everything listens, and commands to try."""
        assert self.sqs is not None and self.api is not None
        queues = {spec.name: spec for spec in self.assembly.queues()}
        queue = queues[self.source.queue]
        dlq_url = self.queue_urls[queue.dead_letter_queue or ""]
        endpoint = self.sqs.endpoint
        throttle = self.api.throttle
        auth = "" if self.api.auth == "NONE" else "; SigV4 checked: sign as the local caller below"
        deployed_visibility = queue.attributes.get("VisibilityTimeout", "30")
        window = self.source.batching_window_seconds
        aws = f"AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url {endpoint} --region {REGION} sqs"
        return [
            f"make local: {self.settings.stack_name} on 127.0.0.1, as synthesized in {self.assembly.path.name}",
            f"  SQS (moto)  {endpoint}  queue {queue.name}, dead-letter queue {queue.dead_letter_queue} after "
            f"{queue.max_receive_count} receive(s)",
            f"  {self.api.name:<10}  {self.api.url}  (throttle {throttle.rate:g}/s, burst {throttle.burst}{auth})",
            f"  worker      {self.function.handler}: batches of up to {self.source.batch_size}, window {window} s, "
            f"{self.concurrency} at once (LOCAL_MAX_CONCURRENCY), timeout {self.function.timeout_seconds} s",
            f"  walls       IAM as synthesized (roles', queue, topic and key policies); network: "
            f"{self.network.describe()} (connect timeout {LOCAL_CONNECT_TIMEOUT_SECONDS} s locally); worker timeout",
            f"  visibility timeout {self.options.visibility_timeout} s locally (LOCAL_VISIBILITY_TIMEOUT; "
            f"{deployed_visibility} s deployed): a failing message reaches the dead-letter queue in seconds",
            *self._caller_lines(),
            "Send a message:",
            f"  {self.api.example(queue.fifo)}",
            "Look at the dead-letter queue:",
            f"  {aws} receive-message --queue-url {dlq_url} --attribute-names All --message-attribute-names All",
            f"  {aws} get-queue-attributes --queue-url {dlq_url} --attribute-names ApproximateNumberOfMessages",
            *self._results_lines(aws),
            "The worker's log lines follow (JSON, one per message). Ctrl-C stops everything.",
        ]

    def _caller_lines(self) -> list[str]:
        """api_auth = iam: the local caller's credentials (its policy allows execute-api:Invoke on this API)."""
        if self.api.auth != "AWS_IAM":
            return []
        key, secret = sigv4.CALLER.values()
        return [
            f"Sign requests (SigV4, execute-api, {REGION}) as the local caller:",
            f"  AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret} (another key, a bad or stale signature: 403)",
        ]

    def _results_lines(self, aws: str) -> list[str]:
        """result_topic = sns: where to read what the worker published (a local queue subscribed to the topic)."""
        subscriber = f"{self.settings.results_topic_name}-local"
        if subscriber not in self.queue_urls:
            return []
        return [
            f"Read the results published to {self.settings.results_topic_name}:",
            f"  {aws} receive-message --queue-url {self.queue_urls[subscriber]} --message-attribute-names All",
        ]
