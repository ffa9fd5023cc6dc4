"""The whole pipeline on 127.0.0.1: local SQS, the API, and the pollers driving the worker; started and stopped as one.

Used by `make local` (local/__main__.py) and by the message-safety tests, which start it on free ports.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from {{ cookiecutter.__package_name }}.settings import ANSWERS

from .assembly import Assembly, Function
from .poller import Poller
from .sqs import CREDENTIALS, REGION, LocalSqs, ensure_free

# The API of each flavour; the post-generation hook keeps only the module of the flavour chosen.
API_CLASSES = {"http": "HttpApi", "rest": "RestApi", "websocket": "WebSocketApi"}
DEFAULT_CONCURRENCY = 4  # execution environments at most, locally (each is a process); LOCAL_MAX_CONCURRENCY
# Credentials and settings of the caller's shell that must not reach the local worker: it talks to local
# endpoints only, never to an AWS account.
WITHHELD = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE")


@dataclass(frozen=True)
class Options:
    sqs_port: int = 9324
    api_port: int = 3000
    visibility_timeout: int = 2
    max_concurrency: int = DEFAULT_CONCURRENCY
    batching_window: int | None = None  # None: as synthesized
    stage: str | None = None
    keep_deliveries: bool = False  # the pollers' record of every record handed to the worker (tests, soak)

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


def worker_environment(
    function: Function, api: dict[str, str], sqs_endpoint: str, references: dict[str, str] | None = None
) -> dict[str, str]:
    """The function's environment as synthesized, on top of the caller's (their own variables pass through), with
    what only exists at deploy time (the @connections URL, a Ref to a queue, topic or table) pointed at the local
    endpoints and resources."""
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
    return (
        caller
        | synthesized
        | api
        | {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_ENDPOINT_URL": sqs_endpoint,  # any AWS client the worker makes talks to the local moto server
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

    def start(self) -> Emulator:
        options = self.options
        if self.assembly is None:
            self.assembly = Assembly.load(self.settings.stack_name, stage=options.stage, report=self.log)
        ensure_free(options.api_port, "LOCAL_API_PORT")  # both ports before anything starts
        ensure_free(options.sqs_port, "LOCAL_SQS_PORT")
        try:
            self.sqs = LocalSqs(options.sqs_port)
            self.queue_urls = self.sqs.create(self.assembly.queues(), visibility_timeout=options.visibility_timeout)
            self.references = create_resources(self.assembly, self.sqs, self.queue_urls)
            flavour = self.settings.api_flavour
            module = importlib.import_module(f"local.{flavour}_api")
            self.api = getattr(module, API_CLASSES[flavour])(self.assembly, self.sqs, options.api_port, log=self.log)
            self.source, self.function = self.assembly.event_source(), self.assembly.function()
            if options.batching_window is not None:
                self.source = dataclasses.replace(self.source, batching_window_seconds=options.batching_window)
            self.concurrency = min(self.source.max_concurrency or 1000, options.max_concurrency)
            self.poller = Poller(
                self.sqs.client,
                self.queue_urls[self.source.queue],
                self.sqs.arn(self.source.queue),
                self.source,
                self.function,
                worker_environment(self.function, self.api.worker_environment(), self.sqs.endpoint, self.references),
                concurrency=self.concurrency,
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
        self.poller = self.api = self.sqs = None

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
        auth = "" if self.api.auth == "NONE" else f"; {self.api.auth} auth is NOT checked locally"
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
            f"  visibility timeout {self.options.visibility_timeout} s locally (LOCAL_VISIBILITY_TIMEOUT; "
            f"{deployed_visibility} s deployed): a failing message reaches the dead-letter queue in seconds",
            "Send a message:",
            f"  {self.api.example(queue.fifo)}",
            "Look at the dead-letter queue:",
            f"  {aws} receive-message --queue-url {dlq_url} --attribute-names All --message-attribute-names All",
            f"  {aws} get-queue-attributes --queue-url {dlq_url} --attribute-names ApproximateNumberOfMessages",
            *self._results_lines(aws),
            "The worker's log lines follow (JSON, one per message). Ctrl-C stops everything.",
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
