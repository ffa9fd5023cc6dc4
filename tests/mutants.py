"""make mutants: plausible template bugs, one at a time, must each make a baked project's own suite fail.

Each mutant is a small edit of the template (the answer wired into the wrong setting, a rule off by one, a policy
statement dropped, ...). For every flavour x queue type (one variant of tests/conftest.py each) where the mutant's
code takes part (one variant for code that is the same in all), the template is copied, edited, baked with that
variant's answers, and the project's suite runs with `-x`: first the test that killed the mutant last time
(tests/mutants-kills.json), then, if that one passes, the whole suite (the slow files last). A kill counts only if the
failing test fails again on its own; a mutant survives if the suite passes. Before any mutant, the killing tests must
pass on each variant unmutated. Prints each result and the kill ratio; exits 1 if one survives (or a baseline fails).
The list grows with each bug we find.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conftest import TEMPLATE, VARIANTS

PROJECT = "{{cookiecutter.project_name}}"
PKG = f"{PROJECT}/{{{{cookiecutter.__package_name}}}}"
# One variant per flavour x queue type (their other answers spread kms-customer, VPC and prod among them).
COMBINATIONS = [
    "http-standard-defaults",
    "http-fifo-none-customer-vpc",
    "rest-standard-iam-customer",
    "rest-fifo-none-prod-vpc",
    "websocket-standard-none-vpc-longest-names",
    "websocket-fifo-iam-customer-prod-vpc",
]
Answers = dict[str, str]


def answer(key: str, default: str) -> Callable[[Answers], str]:
    return lambda answers: answers.get(key, default)


def always(answers: Answers) -> bool:
    return True


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the template root
    old: str
    new: str
    applies: Callable[[Answers], bool] = always
    # False for code that is the same in every variant (alarms, policies written the same way): the first variant
    # it applies to is enough, and the others' runs would only repeat it.
    everywhere: bool = True

    def variants(self) -> list[str]:
        chosen = [v for v in COMBINATIONS if self.applies(VARIANTS[v])]
        return chosen if self.everywhere else chosen[:1]


def flavour(*names: str) -> Callable[[Answers], bool]:
    return lambda answers: answer("api_flavour", "http")(answers) in names


def fifo(answers: Answers) -> bool:
    return answers.get("queue_type") == "fifo"


def customer_key(answers: Answers) -> bool:
    return answers.get("queue_encryption") == "kms-customer"


def prod(answers: Answers) -> bool:
    return answers.get("stage") == "prod"


def http_standard(answers: Answers) -> bool:
    return flavour("http")(answers) and not fifo(answers)


def results_topic(answers: Answers) -> bool:
    return answers.get("result_topic") == "sns"


def vpc_without_nat(answers: Answers) -> bool:
    """A worker in a VPC that reaches AWS through endpoints only (the WebSocket flavour's has a NAT gateway)."""
    return answers.get("worker_vpc") == "new" and not flavour("websocket")(answers)


SETTINGS = f"{PKG}/settings.py"
MUTANTS = [
    Mutant(
        "rate limit wired from the burst answer",
        SETTINGS,
        "cookiecutter.api_throttling | int",
        "cookiecutter.api_burst | int",
    ),
    Mutant(
        "burst wired from the rate answer",
        SETTINGS,
        "cookiecutter.api_burst | int",
        "cookiecutter.api_throttling | int",
    ),
    Mutant(
        "dlq_retries off by one",
        SETTINGS,
        "{{ cookiecutter.dlq_retries | int }}",
        "{{ (cookiecutter.dlq_retries | int) + 1 }}",
    ),
    Mutant(
        "retention off by one",
        SETTINGS,
        "{{ cookiecutter.queue_retention_days | int }}",
        "{{ (cookiecutter.queue_retention_days | int) - 1 }}",
    ),
    Mutant(
        "batch size off by one",
        SETTINGS,
        "{{ cookiecutter.batch_size | int }}",
        "{{ (cookiecutter.batch_size | int) - 1 }}",
        lambda a: answer("batch_size", "10")(a) != "1",
    ),
    Mutant(
        "concurrency off by one",
        SETTINGS,
        "{{ cookiecutter.max_concurrency | int }}",
        "{{ (cookiecutter.max_concurrency | int) + 1 }}",
    ),
    Mutant(
        "memory wired off",
        SETTINGS,
        "{{ cookiecutter.worker_memory_mb | int }}",
        "{{ (cookiecutter.worker_memory_mb | int) + 64 }}",
    ),
    Mutant(
        "timeout off by one",
        SETTINGS,
        "{{ cookiecutter.worker_timeout_seconds | int }}",
        "{{ (cookiecutter.worker_timeout_seconds | int) - 1 }}",
        lambda a: answer("worker_timeout_seconds", "30")(a) != "1",
    ),
    Mutant("visibility factor 5", SETTINGS, "VISIBILITY_TIMEOUT_FACTOR = 6", "VISIBILITY_TIMEOUT_FACTOR = 5"),
    Mutant(
        "DLQ keeps the queue's retention",
        SETTINGS,
        "return SQS_MAX_RETENTION_DAYS",
        "return self.queue_retention_days",
        lambda answers: answers.get("queue_retention_days", "4") != "14",  # equivalent where the queue keeps 14 days
    ),
    Mutant("prod is not prod-like", SETTINGS, '{"prod", "production", "live"}', '{"production", "live"}'),
    Mutant(
        "stage kept on destroy everywhere",
        SETTINGS,
        "RemovalPolicy.RETAIN if self.prod_like else RemovalPolicy.DESTROY",
        "RemovalPolicy.DESTROY",
        prod,
    ),
    Mutant(
        "partial batch responses off",
        f"{PKG}/worker.py",
        "report_batch_item_failures=True",
        "report_batch_item_failures=False",
        everywhere=False,
    ),
    Mutant(
        "FIFO skip-on-error off",
        f"{PROJECT}/worker/handler.py",
        "skip_group_on_error=True",
        "skip_group_on_error=False",
    ),
    Mutant(
        "REST body not URL-encoded",
        f"{PKG}/mapping/rest_request.vtl",
        "&MessageBody=$util.urlEncode($input.body)##",
        "&MessageBody=$input.body##",
        flavour("rest"),
    ),
    Mutant(
        "WebSocket connectionId attribute dropped",
        f"{PKG}/mapping/websocket_request.vtl",
        "&MessageAttribute.1.Name=connectionId##\n&MessageAttribute.1.Value.DataType=String##\n"
        "&MessageAttribute.1.Value.StringValue=$util.urlEncode($context.connectionId)##\n",
        "",
        flavour("websocket"),
    ),
    Mutant(
        "HTTP body taken from a MessageBody field",
        f"{PKG}/http_api.py",
        '.custom("MessageBody", "$request.body")',
        '.custom("MessageBody", "$request.body.MessageBody")',
        flavour("http"),
    ),
    Mutant(
        "FIFO redrive dedup id changes on a rerun",
        f"{PROJECT}/ops/redrive.py",
        """entry["MessageDeduplicationId"] = f"redrive-{message['MessageId']}\"""",
        """entry["MessageDeduplicationId"] = message["ReceiptHandle"][-100:]""",
    ),
    Mutant(
        "queues accept plain HTTP",
        f"{PKG}/queue.py",
        "enforce_ssl=True",
        "enforce_ssl=False",
        everywhere=False,
    ),
    Mutant(
        "senders may not decrypt a cached data key",
        f"{PKG}/queue.py",
        '"kms:GenerateDataKey", "kms:Decrypt"',
        '"kms:GenerateDataKey"',
        customer_key,
    ),
    Mutant(
        "FIFO without high throughput",
        f"{PKG}/queue.py",
        "sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID if settings.fifo else None",
        "None",
        fifo,
    ),
    Mutant(
        "CloudWatch may not publish alarms",
        f"{PKG}/monitoring.py",
        'actions=["sns:Publish"]',
        'actions=["sns:Subscribe"]',
        everywhere=False,
    ),
    Mutant(
        "alarm topic not encrypted with the key",
        f"{PKG}/monitoring.py",
        "master_key=key,",
        "master_key=None,",
        customer_key,
    ),
    Mutant(
        "log groups not encrypted with the key",
        f"{PKG}/encryption.py",
        "encryption_key=key,",
        "encryption_key=None,",
        customer_key,
    ),
    Mutant(
        "logs key grant for any log group",
        f"{PKG}/encryption.py",
        '"kms:EncryptionContext:aws:logs:arn": log_group_arn(scope, name_pattern or name)',
        '"kms:EncryptionContext:aws:logs:arn": log_group_arn(scope, "*")',
        customer_key,
    ),
    Mutant(
        "DLQ alarm on a 5-minute math period",
        f"{PKG}/monitoring.py",
        "period=PERIOD,  # a math",
        "period=None,  # a math",
        everywhere=False,
    ),
    Mutant(
        "dashboard name without the region",
        f"{PKG}/monitoring.py",
        'dashboard_name=f"{settings.prefix}-{Aws.REGION}"',
        "dashboard_name=settings.prefix",
        everywhere=False,
    ),
    Mutant(
        "alarms fire only above their threshold (one dead letter is not enough)",
        f"{PKG}/monitoring.py",
        "cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD",
        "cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD",
        everywhere=False,
    ),
    Mutant(
        "alarms treat missing data as breaching (an idle stack alarms)",
        f"{PKG}/monitoring.py",
        "cloudwatch.TreatMissingData.NOT_BREACHING",
        "cloudwatch.TreatMissingData.BREACHING",
        everywhere=False,
    ),
    Mutant(
        "new dead letters evaluated over one period (DIFF never has a value)",
        f"{PKG}/monitoring.py",
        "evaluation_periods=2,  # DIFF",
        "evaluation_periods=1,  # DIFF",
        everywhere=False,
    ),
    Mutant(
        "dead-letter alarms watch the work queue",
        f"{PKG}/monitoring.py",
        "dlq_depth = dlq.metric_approximate_number_of_messages_visible(",
        "dlq_depth = queue.metric_approximate_number_of_messages_visible(",
        everywhere=False,
    ),
    Mutant(
        "results publish alarm on a metric the worker does not emit",
        f"{PKG}/monitoring.py",
        'metric_name="ResultsPublishFailed"',
        'metric_name="ResultPublishFailed"',
        everywhere=False,
    ),
    Mutant(
        "the dead-letter copy sends custom binary attributes as strings",
        f"{PROJECT}/worker/dead_letters.py",
        'if data_type.startswith("Binary"):',
        'if data_type == "Binary":',
        everywhere=False,
    ),
    Mutant(
        "idempotency rejects an in-progress duplicate as a reused key (catch-all)",
        f"{PROJECT}/worker/idempotency.py",
        "except IdempotencyValidationError as error:",
        "except Exception as error:",
        everywhere=False,
    ),
    Mutant(
        "idempotency expiry fixed instead of the settings'",
        f"{PROJECT}/worker/idempotency.py",
        'expires_after_seconds=int(os.environ.get("IDEMPOTENCY_EXPIRY_SECONDS", "3600")),',
        "expires_after_seconds=3600,",
        everywhere=False,
    ),
    Mutant(
        "redrive stops at the first empty receive",
        f"{PROJECT}/ops/redrive.py",
        "        elif _visible(sqs, url) == 0:",
        "        elif True:",
        everywhere=False,
    ),
    Mutant(
        "make integration waits out its timeout on a failed message",
        f"{PROJECT}/ops/integration.py",
        'if str(line.get("message", "")).startswith(FAILED):',
        "if False:",
        everywhere=False,
    ),
    Mutant(
        "make local lets every signed call through (walls down)",
        f"{PROJECT}/local/walls.py",
        "return None if decision.allowed else self.refusal(decision, service, request)",
        "return None",
        everywhere=False,
    ),
    Mutant(
        "make local hands a message out again while its invocation runs",
        f"{PROJECT}/local/poller.py",
        "VisibilityTimeout=self.hold_seconds,",
        "VisibilityTimeout=self.visibility_timeout,",
        everywhere=False,
    ),
    Mutant(
        "app.py ignores the stage given as context",
        f"{PROJECT}/app.py",
        "settings = ANSWERS.with_context(app.node.try_get_context)",
        "settings = ANSWERS",
        everywhere=False,
    ),
    Mutant(
        "make local drops STAGE",
        f"{PROJECT}/Makefile",
        "$(BIN)/python -m local $(if $(STAGE),--stage $(STAGE),)",
        "$(BIN)/python -m local",
        everywhere=False,
    ),
    Mutant(
        "the post-generation hook leaves the README's capacity section unfilled",
        "hooks/post_gen_project.py",
        "    fill_capacity_section(root)\n",
        "    pass\n",
        everywhere=False,
    ),
    Mutant(
        "a failed results publish is swallowed (the message is taken as done)",
        f"{PROJECT}/worker/results.py",
        "value=1)  # alarm results-publish-failed\n        raise",
        "value=1)  # alarm results-publish-failed\n        return",
        everywhere=False,
    ),
    Mutant(
        "results checked against the queue's size limit instead of SNS's",
        f"{PROJECT}/worker/results.py",
        'limits.too_big("the result to publish", size, limits.SNS_MAX_BYTES)',
        'limits.too_big("the result to publish", size, limits.QUEUE_MAX_BYTES)',
        everywhere=False,
    ),
    Mutant(
        "make local deletes failed records (partial batch responses ignored)",
        f"{PROJECT}/local/poller.py",
        'failed = failed_ids(response, {r["messageId"] for r in records})',
        "failed = set()",
        # The REST variants run the same poller; with batches of 1 a failed record fails its whole invocation, so
        # there is no partial response to ignore.
        lambda answers: flavour("http", "websocket")(answers) and answer("batch_size", "10")(answers) != "1",
    ),
    Mutant(
        "failed messages not counted in the worker's metrics",
        f"{PROJECT}/worker/handler.py",
        'metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=1)',
        "pass",
        lambda answers: flavour("http")(answers) and not fifo(answers),
    ),
    Mutant(
        "the reply client's boto3 imported at the cold start",
        f"{PROJECT}/worker/replies.py",
        "from aws_lambda_powertools import Logger\n",
        "import boto3  # noqa: F401\nfrom aws_lambda_powertools import Logger\n",
        lambda answers: flavour("websocket")(answers) and not fifo(answers),
    ),
    # The worker's optional parts and the dead-lettering of rejects: their tests run in every variant (the options
    # are switched on in the tests themselves), so one variant suffices.
    Mutant(
        "rejected messages retried instead of dead-lettered at once",
        f"{PROJECT}/worker/handler.py",
        "    except logic.RejectedMessage as rejection:\n",
        "    except logic.RejectedMessage as rejection:\n        raise\n",
        http_standard,
    ),
    Mutant(
        "the schema left out of the worker's code asset",
        f"{PKG}/worker.py",
        'shutil.copy2(SCHEMA, Path(output_dir) / "schemas" / SCHEMA.name)',
        "pass",
        http_standard,
    ),
    Mutant(
        "anyone may publish results",
        f"{PKG}/fanout.py",
        "effect=iam.Effect.DENY,",
        "effect=iam.Effect.ALLOW,",
        http_standard,
    ),
    Mutant(
        "results published without their message id",
        f"{PROJECT}/worker/results.py",
        'attributes = {"messageId":',
        'attributes = {"message_id":',
        http_standard,
    ),
    Mutant(
        "the client's idempotency key ignored",
        f"{PROJECT}/worker/idempotency.py",
        "if isinstance(key, str) and key:",
        "if False:",
        http_standard,
    ),
    Mutant(
        "idempotency keyed by the body (two equal requests collapse into one)",
        f"{PROJECT}/worker/idempotency.py",
        "delivery = record.attributes.message_deduplication_id or record.message_id",
        "delivery = record.body",
        http_standard,
    ),
    Mutant(
        "a key reused with another body gets the first result (no payload validation)",
        f"{PROJECT}/worker/idempotency.py",
        'payload_validation_jmespath="body",',
        "",
        http_standard,
    ),
    Mutant(
        "a result too big for the results topic is retried instead of rejected",
        f"{PROJECT}/worker/handler.py",
        "    RESULT_CHECKS.append(results.check_size)",
        "    pass",
        http_standard,
    ),
    Mutant(
        "idempotency without the Lambda context (in-progress records never expire early)",
        f"{PROJECT}/worker/handler.py",
        "        idempotency.config.register_lambda_context(context)",
        "        pass",
        http_standard,
    ),
    # The walls: each must make a local test fail (the denial, the timeout), not only a test of the template.
    Mutant(
        "worker may not publish its results (grant dropped)",
        f"{PKG}/fanout.py",
        'publisher.role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))',
        "pass",
        results_topic,
    ),
    Mutant(
        "worker in a VPC without the SQS endpoint (rejects cannot reach the DLQ)",
        f"{PKG}/worker.py",
        '        self.reach("sqs")\n',
        "",
        vpc_without_nat,
    ),
    Mutant(
        "the queues' key not granted for the worker's sends (rejects cannot reach the DLQ)",
        f"{PKG}/worker.py",
        "        queues.grant_key_for_send(self.role)\n",
        "",
        lambda answers: customer_key(answers) and not results_topic(answers),  # the topic's grant covers the key too
    ),
    Mutant(
        "worker's AWS clients keep botocore's 60 s connect timeout",
        f"{PROJECT}/worker/clients.py",
        'connect_timeout=float(os.environ.get(CONNECT_VARIABLE, "2")),',
        "connect_timeout=60.0,",
        vpc_without_nat,
    ),
    Mutant(
        "local invocations not stopped at the worker's timeout",
        f"{PROJECT}/local/poller.py",
        "ready, _, _ = select.select([self.results], [], [], self.function.timeout_seconds)",
        "ready, _, _ = select.select([self.results], [], [], None)",
        http_standard,
    ),
    Mutant(
        "worker metrics without the stage (another stage's alarm fires)",
        f"{PKG}/worker.py",
        '"POWERTOOLS_METRICS_NAMESPACE": settings.metrics_namespace,',
        '"POWERTOOLS_METRICS_NAMESPACE": settings.project_name,',
        http_standard,
    ),
    Mutant(
        "oldest-message alarm not clamped",
        SETTINGS,
        "min(self.retry_budget_seconds, self.queue_retention_seconds // 2)",
        "self.retry_budget_seconds",
    ),
]


@dataclass(frozen=True)
class Result:
    mutant: Mutant
    variant: str
    killed: bool
    by: str  # the failing test that killed it (and failed again on its own), or why it was not killed


# The suite's files that run the local pipeline wait for it (seconds each): with `-x`, they run last, so that a mutant
# the infrastructure tests catch never waits for them.
SLOW_TEST_FILES = ("tests/test_local.py", "tests/test_make_local.py")
# Which test killed each mutant in each variant on the last run ("<mutant> / <variant>": test id). It runs first:
# most mutants are killed by one test of a few seconds, where the suite up to it takes tens.
KILLS = Path(__file__).with_name("mutants-kills.json")
TESTS_FAILED = 1  # pytest's exit code when tests ran and some failed (others: nothing collected, a usage error, ...)


def fast_first(project: Path) -> list[str]:
    files = sorted(path.relative_to(project).as_posix() for path in (project / "tests").glob("test_*.py"))
    return [f for f in files if f not in SLOW_TEST_FILES] + [f for f in SLOW_TEST_FILES if f in files]


def bake(template: Path, variant: str, workdir: Path) -> Path:
    answers = [f"{key}={value}" for key, value in VARIANTS[variant].items()]
    output = workdir / "baked"
    baked = subprocess.run(  # a process of its own: cookiecutter changes the working directory while it bakes
        [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(output), str(template), *answers],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert baked.returncode == 0, f"{template} / {variant}: the template did not bake\n{baked.stderr[-2000:]}"
    [project] = list(output.iterdir())
    return project


def pytest(project: Path, tests: list[str]) -> tuple[int, str | None]:
    """The suite's exit code on `tests` (stopping at the first failure), and the id of the test that failed."""
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
    )
    words = [line.split() for line in suite.stdout.splitlines()]
    failed = [w[1] for w in words if len(w) > 1 and w[0] in ("FAILED", "ERROR") and w[1].startswith("tests/")]
    return suite.returncode, failed[0] if failed else None


def run(mutant: Mutant, variant: str, workdir: Path, killer: str | None) -> Result:
    """The mutant baked into the variant; its last killer first, then the whole suite if that one passes. A failure
    counts as a kill only if the failing test (or the suite, when nothing was collected) fails again on its own."""
    template = workdir / "template"
    shutil.copytree(
        TEMPLATE, template, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "baked", "__pycache__")
    )
    target = template / mutant.path
    text = target.read_text()
    assert mutant.old in text, f"{mutant.name}: {mutant.old!r} is not in {mutant.path} (update the mutant)"
    target.write_text(text.replace(mutant.old, mutant.new))
    project = bake(template, variant, workdir)
    if killer is not None:
        code, failed = pytest(project, [killer])
        if code == TESTS_FAILED and failed is not None:
            again, _ = pytest(project, [failed])
            return Result(mutant, variant, again != 0, failed if again else f"{failed} did not fail again")
    tests = fast_first(project)
    code, failed = pytest(project, tests)
    if code == 0:
        return Result(mutant, variant, False, "the suite passed")
    again, _ = pytest(project, [failed] if failed else tests)
    by = failed or f"exit {code}"
    return Result(mutant, variant, again != 0, by if again else f"{by} did not fail again")


def baseline(variant: str, killers: list[str], workdir: Path) -> str | None:
    """The unmutated template baked into the variant: the tests that kill mutants must pass there, or their kills
    mean nothing. None, or the test that failed."""
    project = bake(TEMPLATE, variant, workdir)
    known = [k for k in killers if k.split("::")[0] in fast_first(project)]
    code, failed = pytest(project, sorted(set(known)) or fast_first(project))
    return None if code == 0 else (failed or f"exit {code}")


def main(argv: list[str]) -> int:
    """`python tests/mutants.py [words]`: all mutants, or those whose name contains the words (`a|b`: either)."""
    chosen = [m for m in MUTANTS if any(part in m.name for part in " ".join(argv).split("|"))]
    jobs = [(m, v) for m in chosen for v in m.variants()]
    kills: dict[str, str] = json.loads(KILLS.read_text()) if KILLS.exists() else {}
    started = time.monotonic()

    def killer(mutant: Mutant, variant: str) -> str | None:
        return kills.get(f"{mutant.name} / {variant}")

    def first(variant: str) -> str | None:
        with tempfile.TemporaryDirectory(prefix="baseline-") as workdir:
            return baseline(variant, [k for m, v in jobs if v == variant and (k := killer(m, v))], Path(workdir))

    def one(job: tuple[Mutant, str]) -> Result:
        with tempfile.TemporaryDirectory(prefix="mutant-") as workdir:
            return run(*job, Path(workdir), killer(*job))

    results = []
    with ThreadPoolExecutor(max_workers=2) as pool:  # two suites at a time: one per core
        variants = sorted({v for _, v in jobs}, key=COMBINATIONS.index)
        broken = {v: failed for v, failed in zip(variants, pool.map(first, variants), strict=True) if failed}
        for variant, failed in broken.items():
            print(f"BASELINE {variant}: {failed} fails on the unmutated template; no kill there would mean anything")
        if broken:
            return 1
        print(f"baseline: the killing tests pass unmutated in {len(variants)} variants", flush=True)
        for result in pool.map(one, jobs):
            results.append(result)
            verdict = "killed  " if result.killed else "SURVIVED"
            print(f"{verdict} {result.mutant.name:45} {result.variant:40} {result.by}", flush=True)
            if result.killed:
                kills[f"{result.mutant.name} / {result.variant}"] = result.by
    known = {f"{m.name} / {v}" for m in MUTANTS for v in m.variants()}
    KILLS.write_text(json.dumps({k: v for k, v in sorted(kills.items()) if k in known}, indent=1) + "\n")
    killed = sum(r.killed for r in results)
    print(
        f"\nKill ratio: {killed}/{len(results)} ({len(chosen)} mutants over {len(COMBINATIONS)} flavour x queue type "
        f"variants) in {time.monotonic() - started:.0f} s"
    )
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
