"""Every value the stack is built from: the answers given when the project was generated, and what follows from them.

Constructs read this object and never invent numbers or names. Change a setting here (or pass another stage with
`cdk deploy -c stage=prod`), not in the constructs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # CDK types are imported where used, so that ops tools read settings without the CDK runtime
    from aws_cdk import RemovalPolicy
    from aws_cdk import aws_logs as logs

# The Powertools layer must carry the same version as the `aws-lambda-powertools` pin in pyproject.toml, so that
# the tests run the worker against the library it gets in Lambda (a test checks the two agree).
POWERTOOLS_VERSION = "3.37.0"
WORKER_RUNTIME = "python3.14"

# Stages whose data outlives `cdk destroy` (queues and keys are retained, the stack is termination-protected,
# logs are kept longer). Add a stage name here to treat it as production.
PROD_LIKE_STAGES = frozenset({"prod", "production", "live"})

SQS_MAX_RETENTION_DAYS = 14
SQS_MAX_MESSAGE_BYTES = 1_048_576  # SQS's largest message (1 MiB, body and attributes), also its default since 2025
DAY_SECONDS = 24 * 60 * 60
VISIBILITY_TIMEOUT_FACTOR = 6  # Lambda guidance: visibility timeout >= 6 x function timeout + batching window
# The worker's AWS clients (worker/clients.py): botocore's standard retry mode with the first attempt and one retry;
# no timeout below half a second (a call within the region takes milliseconds), reads at most 10 s (AWS APIs answer
# within that; a client of your own for a slower service takes its own Config).
SDK_ATTEMPTS = 2
SDK_MIN_TIMEOUT_SECONDS = 0.5
SDK_MAX_CONNECT_SECONDS = 2.0
SDK_MAX_READ_SECONDS = 10.0
STAGE_PATTERN = re.compile(r"[a-z][a-z0-9]{0,11}")
ROUTE_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
LAYER_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+")
# What `cdk synth|deploy -c key=value` may override (app.py); every other setting lives in this file.
CONTEXT_KEYS = ("stage", "powertools_layer_arn")


@dataclass(frozen=True)
class Settings:
    project_name: str
    stage: str
    description: str
    api_flavour: Literal["http", "rest", "websocket"]
    api_auth: Literal["iam", "none"]
    api_rate_limit: int  # steady-state requests per second
    api_burst_limit: int
    queue_type: Literal["standard", "fifo"]
    queue_encryption: Literal["kms-managed", "kms-customer", "sqs-managed"]
    queue_retention_days: int
    dlq_retries: int  # receives before SQS moves a message to the dead-letter queue (maxReceiveCount)
    batch_size: int
    batching_window_seconds: int
    max_concurrency: int
    worker_timeout_seconds: int
    worker_memory_mb: int
    alarm_email: str
    worker_vpc: Literal["none", "new"]
    result_topic: Literal["none", "sns"]  # sns: the worker publishes each result to the results topic (results.py)
    idempotency: Literal["none", "dynamodb"]  # dynamodb: each message is processed once (worker/idempotency.py)
    # Custom observability: Lambda extension layers (e.g. a vendor's agent) and the environment they read.
    # The worker code does not change; Powertools Logger/Metrics output stays on stdout for CloudWatch.
    worker_extension_layer_arns: tuple[str, ...] = ()
    worker_environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # AWS calls your own logic makes (worker/logic.py): (action, resource ARN) pairs granted to the worker's role, e.g.
    # (("s3:GetObject", "arn:aws:s3:::my-bucket/*"),). In a VPC each service also gets its endpoint. `make local`
    # refuses a call with no grant, as AWS would, and says so.
    worker_permissions: tuple[tuple[str, str], ...] = ()
    # worker_vpc = "new": the Availability Zones of the worker's subnets, by name (e.g. ("us-east-1a", "us-east-1b")).
    # Empty: two of the region's, looked up in your account when the deploy environment is known (network.py).
    worker_availability_zones: tuple[str, ...] = ()
    # The Powertools layer's ARN in a region where its public SSM parameter is missing (`make preflight` tells):
    # empty resolves `powertools_layer_parameter` at deploy time. Same version and architecture (arm64), please.
    powertools_layer_arn: str = ""
    # idempotency = dynamodb: the message field that carries the client's idempotency key; a message without it is
    # keyed by its delivery (the SQS message id, or the FIFO deduplication id). A client that retries sends the key.
    idempotency_key_field: str = "idempotency_key"
    # How long a processed message is remembered (its result is returned to every duplicate meanwhile). 0: the
    # queue's retention, so that no copy SQS may still deliver, and no client retry sent meanwhile, runs twice.
    idempotency_expiry_seconds: int = 0
    # websocket: named routes, selected on the frame's `action` field ($request.body.action). Each goes to the
    # queue like $default, with its route key as the `routeKey` message attribute, e.g. ("orders", "refunds").
    websocket_routes: tuple[str, ...] = ()
    # Capacity sizing (README, "Capacity"; `make capacity`): how long one invocation of the worker typically takes
    # with a full batch. Measure yours (the worker's Duration metric) and put it here.
    typical_invocation_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not STAGE_PATTERN.fullmatch(self.stage):
            raise ValueError(
                f"stage: {self.stage!r} is not allowed; use 1-12 lower-case letters and digits, starting with a letter"
            )
        for route in self.websocket_routes:
            if not ROUTE_KEY_PATTERN.fullmatch(route):
                raise ValueError(
                    f"websocket_routes: {route!r} is not allowed; use 1-64 letters, digits, '-' or '_' (the keys "
                    "starting with $ are API Gateway's own)"
                )
        if len(set(self.websocket_routes)) != len(self.websocket_routes):
            raise ValueError(f"websocket_routes: {list(self.websocket_routes)} names a route twice")
        if not self.idempotency_key_field or self.idempotency_expiry_seconds < 0:
            raise ValueError(
                "idempotency_key_field must not be empty and idempotency_expiry_seconds must be 0 (the queue's "
                f"retention) or more; got {self.idempotency_key_field!r} and {self.idempotency_expiry_seconds}"
            )
        if self.powertools_layer_arn and not LAYER_ARN_PATTERN.fullmatch(self.powertools_layer_arn):
            raise ValueError(
                f"powertools_layer_arn: {self.powertools_layer_arn!r} is not a layer version ARN; expected "
                "arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>, or empty for the SSM parameter"
            )

    def for_stage(self, stage: str | None) -> Settings:
        """The same settings for another stage (`cdk synth -c stage=prod`); None keeps this one."""
        return self if stage is None else dataclasses.replace(self, stage=stage)

    def with_context(self, context: Callable[[str], object]) -> Settings:
        """The same settings with the CONTEXT_KEYS that `cdk ... -c key=value` gives (e.g. app.node.try_get_context)."""
        given = {key: value for key in CONTEXT_KEYS if (value := context(key)) is not None}
        return dataclasses.replace(self, **given) if given else self

    # Names (fixed by the design contract; the stage keeps two deployments in one account apart).
    @property
    def prefix(self) -> str:
        return f"{self.project_name}-{self.stage}"

    @property
    def fifo(self) -> bool:
        return self.queue_type == "fifo"

    @property
    def stack_name(self) -> str:
        return f"{self.prefix}-queue-stack"

    @property
    def queue_name(self) -> str:
        return f"{self.prefix}-queue" + (".fifo" if self.fifo else "")

    @property
    def dlq_name(self) -> str:
        return f"{self.prefix}-dlq" + (".fifo" if self.fifo else "")

    @property
    def api_name(self) -> str:
        return f"{self.prefix}-{self.api_flavour}-api"

    @property
    def worker_name(self) -> str:
        return f"{self.prefix}-worker"

    @property
    def results_topic_name(self) -> str:
        """A standard topic even behind a FIFO queue: e-mail and Lambda subscriptions need one (README)."""
        return f"{self.prefix}-results"

    @property
    def metrics_namespace(self) -> str:
        """The worker's CloudWatch namespace: with the stage in it, two stages in one account keep their metrics (and
        the alarms on them) apart."""
        return self.prefix

    @property
    def service_name(self) -> str:
        """The worker's Powertools service: the `service` dimension of its metrics and a field of its log lines, with
        the stage in it for the same reason."""
        return self.prefix

    @property
    def idempotency_table_name(self) -> str:
        return f"{self.prefix}-idempotency"

    # Derived limits.
    @property
    def visibility_timeout_seconds(self) -> int:
        """Long enough that a message is not handed out again while a worker (and its retries) may still hold it."""
        return VISIBILITY_TIMEOUT_FACTOR * self.worker_timeout_seconds + self.batching_window_seconds

    @property
    def sdk_timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds of every AWS client the worker makes. All attempts of one call take at most a third
        of the worker's timeout, so a dependency that hangs (no route, an outage) fails its own record instead of
        timing out the invocation and returning the whole batch (botocore's defaults, 60 s each, outlast any worker
        timeout up to 2 minutes). Connect gets a quarter of an attempt. Below a 6 s worker timeout the half-second
        floors win, and a hanging call may outlast the invocation."""
        attempt = self.worker_timeout_seconds / 3 / SDK_ATTEMPTS
        connect = round(min(SDK_MAX_CONNECT_SECONDS, max(SDK_MIN_TIMEOUT_SECONDS, attempt / 4)), 1)
        read = round(min(SDK_MAX_READ_SECONDS, max(SDK_MIN_TIMEOUT_SECONDS, attempt - connect)), 1)
        return connect, read

    @property
    def max_message_bytes(self) -> int:
        """Both queues' MaximumMessageSize: SQS's largest, set explicitly so that the API's documented body limit,
        the queues' and the worker's checks (worker/limits.py) are one number."""
        return SQS_MAX_MESSAGE_BYTES

    @property
    def dlq_retention_days(self) -> int:
        """The maximum, so that failed messages wait as long as SQS allows for someone to look at them."""
        return SQS_MAX_RETENTION_DAYS

    @property
    def queue_retention_seconds(self) -> int:
        return self.queue_retention_days * DAY_SECONDS

    @property
    def retry_budget_seconds(self) -> int:
        """The least time a message that always fails spends in the queue before SQS dead-letters it: each of its
        dlq_retries receives hides it for a visibility timeout. It must stay below the retention, or the message
        expires instead (the generation hook refuses such answers)."""
        return self.visibility_timeout_seconds * self.dlq_retries

    @property
    def idempotency_expiry(self) -> int:
        """Seconds a processed message is remembered: every duplicate younger than this gets the stored result."""
        return self.idempotency_expiry_seconds or self.queue_retention_seconds

    @property
    def oldest_message_alarm_seconds(self) -> int:
        """A message older than every retry could take means the worker lags. Clamped to half the retention: the
        age can never exceed the retention (messages expire), and half of it leaves time to act before they do."""
        return min(self.retry_budget_seconds, self.queue_retention_seconds // 2)

    # Stage-dependent behaviour.
    @property
    def prod_like(self) -> bool:
        return self.stage in PROD_LIKE_STAGES

    @property
    def log_retention(self) -> logs.RetentionDays:
        from aws_cdk import aws_logs as logs

        return logs.RetentionDays.ONE_YEAR if self.prod_like else logs.RetentionDays.TWO_WEEKS

    @property
    def removal_policy(self) -> RemovalPolicy:
        """What `cdk destroy` does to queues, keys and logs: keep them on prod-like stages, delete them elsewhere."""
        from aws_cdk import RemovalPolicy

        return RemovalPolicy.RETAIN if self.prod_like else RemovalPolicy.DESTROY

    @property
    def powertools_layer_parameter(self) -> str:
        """Public SSM parameter holding the regional ARN of the Powertools layer (resolved at deploy, not at synth).
        Published by the Powertools team in the commercial regions they list; `make preflight` checks yours."""
        return f"/aws/service/powertools/python/arm64/{WORKER_RUNTIME}/{POWERTOOLS_VERSION}"


ANSWERS = Settings(
    project_name="{{ cookiecutter.project_name }}",
    stage="{{ cookiecutter.stage }}",
    description="{{ cookiecutter.__description_literal }}",
    api_flavour="{{ cookiecutter.api_flavour }}",
    api_auth="{{ cookiecutter.api_auth }}",
    api_rate_limit={{ cookiecutter.api_throttling | int }},
    api_burst_limit={{ cookiecutter.api_burst | int }},
    queue_type="{{ cookiecutter.queue_type }}",
    queue_encryption="{{ cookiecutter.queue_encryption }}",
    queue_retention_days={{ cookiecutter.queue_retention_days | int }},
    dlq_retries={{ cookiecutter.dlq_retries | int }},
    batch_size={{ cookiecutter.batch_size | int }},
    batching_window_seconds={{ cookiecutter.batching_window_seconds | int }},
    max_concurrency={{ cookiecutter.max_concurrency | int }},
    worker_timeout_seconds={{ cookiecutter.worker_timeout_seconds | int }},
    worker_memory_mb={{ cookiecutter.worker_memory_mb | int }},
    alarm_email="{{ cookiecutter.alarm_email }}",
    worker_vpc="{{ cookiecutter.worker_vpc }}",
    result_topic="{{ cookiecutter.result_topic }}",
    idempotency="{{ cookiecutter.idempotency }}",
)
