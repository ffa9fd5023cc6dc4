"""`make bench`: how fast this project is, as a table and as bench.json.

Each figure is the median of several runs, and each ratio compares two things measured side by side (a, b, a, b,
...) in the same run, so that the figures hold on a busy machine.

B1  the whole test suite's wall time / one bare CDK synth (an app with one empty stack, this interpreter)
B2  the worker's cold import: a fresh interpreter importing the handler module, minus one importing only `json`
    (bytecode caches warm, as in Lambda)
B3  records/s through the real handler (sample logic, 10,000 records in batches of the event source's batch size)
    / records/s of a minimal hand-written loop doing the same observable work: parse, call the logic, write the
    same JSON log line per record, emit the same metrics as EMF, build the partial batch response
B4  the worker's code asset, zipped as Lambda receives it
B5  `make local` end to end (python -m local.soak, 5 % poison): messages/s, and messages lost

Usage: python -m ops.bench [--repeat N] [--only B2 B3 ...] [--json bench.json]
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from {{ cookiecutter.__package_name }}.settings import ANSWERS

from local.assembly import Assembly, Function

PROJECT = Path(__file__).resolve().parent.parent
WORKER = PROJECT / "worker"
REGION = "eu-west-1"
# An app with one empty stack: the floor any CDK app's synth pays (interpreter, aws-cdk-lib, the jsii runtime).
BARE_SYNTH = "import sys, aws_cdk as cdk; app = cdk.App(outdir=sys.argv[1]); cdk.Stack(app, 'Empty'); app.synth()"
# Children write bytecode caches (a cold start in Lambda reads them from the deployment package and the layer).
QUIET = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"
}


@dataclass
class Figure:
    name: str
    what: str
    value: float
    unit: str
    target: str  # e.g. "<= 2.0"
    detail: dict[str, Any]

    @property
    def met(self) -> bool:
        operator, bound = self.target.split()
        return self.value <= float(bound) if operator == "<=" else self.value >= float(bound)


class BenchError(RuntimeError):
    """A command the bench runs failed."""


def timed(command: Sequence[str], *, cwd: Path = PROJECT, env: dict[str, str] | None = None) -> float:
    """Wall seconds of a command, which must succeed."""
    started = time.perf_counter()
    run = subprocess.run(list(command), cwd=cwd, env=env or QUIET, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return seconds


def side_by_side(repeat: int, **measures: Callable[[], float]) -> dict[str, list[float]]:
    """Each measure `repeat` times, interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeat):
        for name, measure in measures.items():
            samples[name].append(measure())
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


# --- the stack as synthesized -----------------------------------------------------------------------------------------


OPTIONAL_SERVICES = ("RESULT_TOPIC_ARN", "IDEMPOTENCY_TABLE")  # settings.result_topic, settings.idempotency


def stack_assembly() -> Assembly:
    return Assembly.load(ANSWERS.stack_name, report=lambda line: print(line, file=sys.stderr))


def lambda_environment(function: Function) -> dict[str, str]:
    """What Lambda gives the worker: the synthesized variables (ones only known at deploy time get a placeholder,
    read on first use), the region and the function's name, and no X-Ray daemon. The results topic and the
    idempotency table are left out: B2 and B3 measure the plumbing, and a publish or a DynamoDB write per record
    is a network round trip to measure deployed (README, "Performance")."""
    synthesized = {
        name: value if isinstance(value, str) else "https://unresolved.invalid"
        for name, value in function.environment.items()
        if name not in OPTIONAL_SERVICES
    }
    lambda_sets = {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
    }
    return QUIET | synthesized | lambda_sets


# --- B1 ---------------------------------------------------------------------------------------------------------------


def bare_synth() -> float:
    with tempfile.TemporaryDirectory() as outdir:
        return timed([sys.executable, "-c", BARE_SYNTH, outdir])


def b1_suite(repeat: int) -> Figure:
    suite = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    samples = side_by_side(repeat, synth=bare_synth, suite=lambda: timed(suite))
    ratio = median(samples["suite"]) / median(samples["synth"])
    return Figure("B1", "test suite / one bare CDK synth", round(ratio, 2), "x", "<= 2.0", samples)


# --- B2 ---------------------------------------------------------------------------------------------------------------


def b2_cold_import(function: Function, repeat: int) -> Figure:
    module = function.handler.rsplit(".", 1)[0]
    env = lambda_environment(function)
    importing = {name: [sys.executable, "-c", f"import {name}"] for name in (module, "json")}
    for command in importing.values():  # bytecode written once, as in the deployment package's warm caches
        timed(command, cwd=WORKER, env=env)
    samples = side_by_side(
        repeat, **{name: (lambda c=command: timed(c, cwd=WORKER, env=env)) for name, command in importing.items()}
    )
    extra_ms = (median(samples[module]) - median(samples["json"])) * 1000
    return Figure("B2", f"cold import of {module} - json", round(extra_ms, 1), "ms", "<= 80", samples)


# --- B3 ---------------------------------------------------------------------------------------------------------------


def sqs_records(count: int, fifo: bool) -> list[dict[str, Any]]:
    """SQS records as the event source mapping delivers them, with bodies the sample logic accepts."""
    records = []
    for n in range(count):
        attributes = {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000", "SenderId": "bench"}
        if fifo:
            attributes |= {"MessageGroupId": f"group-{n % 10}", "SequenceNumber": str(n)}
        records.append(
            {
                "messageId": f"00000000-0000-0000-0000-{n:012d}",
                "receiptHandle": f"handle-{n}",
                "body": json.dumps({"order": n, "item": "book", "quantity": 1 + n % 3}),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:bench",
                "awsRegion": REGION,
            }
        )
    return records


def hand_loop() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The least a handler can do and still show the user what ours shows: the same log line per record, the same
    metrics as EMF, the same partial batch response (the floor B3 compares the real handler to)."""
    import logic

    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "")
    write = sys.stdout.write
    state = {"cold_start": True}

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        common = {
            "service": service,
            "cold_start": state["cold_start"],
            "function_name": context.function_name,
            "function_memory_size": context.memory_limit_in_mb,
            "function_arn": context.invoked_function_arn,
            "function_request_id": context.aws_request_id,
        }
        state["cold_start"] = False
        failures, counts = [], {"MessagesProcessed": [], "MessagesFailed": []}
        for record in event["Records"]:
            now = datetime.datetime.now(datetime.UTC)
            stamp = now.strftime("%Y-%m-%d %H:%M:%S,") + f"{now.microsecond // 1000:03d}+0000"
            try:
                result = logic.process(json.loads(record["body"]))
            except Exception as error:
                message = "Message failed; it returns to the queue"
                fields = {"error": f"{type(error).__name__}: {error}"}
                line = {"level": "WARNING", "location": "record_handler", "message": message, "timestamp": stamp}
                line |= common | {"message_id": record["messageId"]} | fields
                failures.append({"itemIdentifier": record["messageId"]})
                counts["MessagesFailed"].append(1.0)
            else:
                message, fields = "Message processed", {"result": result}
                line = {"level": "INFO", "location": "record_handler", "message": message, "timestamp": stamp}
                line |= common | {"message_id": record["messageId"]} | fields
                counts["MessagesProcessed"].append(1.0)
            write(json.dumps(line, separators=(",", ":")) + "\n")
        metrics = [{"Name": name, "Unit": "Count"} for name, values in counts.items() if values]
        emf = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["service"]], "Metrics": metrics}],
            },
            "service": service,
        } | {name: values for name, values in counts.items() if values}
        write(json.dumps(emf, separators=(",", ":")) + "\n")
        return {"batchItemFailures": failures}

    return handle


def throughput(kind: str, handler: str, records: int, batch_size: int, fifo: bool) -> float:
    """Records/s through the real handler ("handler") or the hand-written loop ("loop"), in this process: the child
    process of B3, whose stdout is the worker's log, as in Lambda, and whose environment is the function's."""
    from local.runtime import Context

    sys.path.insert(0, str(WORKER))
    if kind == "handler":
        module, attribute = handler.rsplit(".", 1)
        handle = getattr(__import__(module), attribute)
    else:
        handle = hand_loop()
    events = sqs_records(records, fifo)
    batches = [{"Records": events[start : start + batch_size]} for start in range(0, records, batch_size)]
    name, memory = os.environ["AWS_LAMBDA_FUNCTION_NAME"], int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
    started = time.perf_counter()
    for batch in batches:
        response = handle(batch, Context(name, memory, timeout_seconds=900))
        assert response == {"batchItemFailures": []}, response
    return records / (time.perf_counter() - started)


def run_throughput(kind: str, function: Function, records: int, batch_size: int, fifo: bool) -> tuple[float, str]:
    """`throughput` in a child process: records/s, and what it wrote to stdout."""
    with tempfile.NamedTemporaryFile("r") as result, tempfile.TemporaryFile("w+") as stdout:
        arguments = [kind, function.handler, str(records), str(batch_size), "fifo" if fifo else "standard", result.name]
        run = subprocess.run(
            [sys.executable, "-m", "ops.bench", "--throughput", *arguments],
            cwd=PROJECT,
            env=lambda_environment(function),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        if run.returncode != 0:
            raise BenchError(f"throughput of the {kind} failed:\n{run.stderr[-3000:]}")
        stdout.seek(0)
        return float(Path(result.name).read_text()), stdout.read()


def b3_throughput(assembly: Assembly, repeat: int, records: int) -> Figure:
    source, function = assembly.event_source(), assembly.function()
    fifo = source.queue.endswith(".fifo")

    def measure(kind: str) -> float:
        return run_throughput(kind, function, records, source.batch_size, fifo)[0]

    samples = side_by_side(repeat, handler=lambda: measure("handler"), loop=lambda: measure("loop"))
    ratio = median(samples["handler"]) / median(samples["loop"])
    detail = {"records": records, "batch_size": source.batch_size, "records_per_second": samples}
    return Figure("B3", "worker records/s / hand-written loop", round(ratio, 2), "x", ">= 0.5", detail)


# --- B4 ---------------------------------------------------------------------------------------------------------------


def worker_asset(assembly: Assembly) -> Path:
    """The folder cdk.out holds for the worker's code asset (the function's S3 key names it)."""
    mapping = assembly.only("AWS::Lambda::EventSourceMapping")
    key = assembly.properties(mapping["FunctionName"]["Ref"])["Code"]["S3Key"]
    manifest = assembly.path.with_name(assembly.path.name.replace(".template.json", ".assets.json"))
    files = json.loads(manifest.read_text())["files"]
    return assembly.path.parent / files[key.removesuffix(".zip")]["source"]["path"]


def zipped_size(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder))
    return buffer.getbuffer().nbytes


def b4_asset(assembly: Assembly) -> Figure:
    folder = worker_asset(assembly)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    size_kb = zipped_size(folder) / 1024
    return Figure("B4", "worker code asset, zipped", round(size_kb, 1), "KB", "<= 50", {"files": files})


# --- B5 ---------------------------------------------------------------------------------------------------------------


def b5_local(repeat: int, messages: int) -> Figure:
    runs = []

    def soak() -> float:
        run = subprocess.run(
            [sys.executable, "-m", "local.soak", "--messages", str(messages)],
            cwd=PROJECT,
            env=QUIET,
            capture_output=True,
            text=True,
        )
        if not run.stdout.strip():
            raise BenchError(f"python -m local.soak failed:\n{run.stderr[-3000:]}")
        runs.append(json.loads(run.stdout.strip().splitlines()[-1]))
        return runs[-1]["messages_per_second"]

    samples = side_by_side(repeat, soak=soak)
    lost = max(run["lost"] for run in runs)
    detail = {"messages": messages, "runs": runs, "lost": lost}
    return Figure("B5", f"make local, messages/s ({lost} lost)", median(samples["soak"]), "/s", ">= 300", detail)


# --- the table --------------------------------------------------------------------------------------------------------


def table(figures: list[Figure]) -> str:
    lines = [f"{'':4}{'figure':44}{'median':>12}  {'target':10}met"]
    for figure in figures:
        met = "yes" if figure.met and figure.detail.get("lost", 0) == 0 else "NO"
        value = f"{figure.value:g} {figure.unit}"
        lines.append(f"{figure.name:4}{figure.what:44}{value:>12}  {figure.target + ' ' + figure.unit:10}{met}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (B2: ten times as many)")
    parser.add_argument("--only", nargs="+", choices=["B1", "B2", "B3", "B4", "B5"], default=None)
    parser.add_argument("--records", type=int, default=10_000, help="B3 (default 10,000)")
    parser.add_argument("--messages", type=int, default=2000, help="B5 (default 2,000)")
    parser.add_argument("--json", type=Path, default=PROJECT / "bench.json")
    parser.add_argument("--template", type=Path, help="a synthesized stack template (default: cdk.out's)")
    parser.add_argument("--throughput", nargs=6, help=argparse.SUPPRESS)  # the child process of B3
    args = parser.parse_args(argv)
    if args.throughput:
        kind, handler, records, batch_size, queue_type, result = args.throughput
        rate = throughput(kind, handler, int(records), int(batch_size), queue_type == "fifo")
        Path(result).write_text(str(rate))
        return 0
    wanted = set(args.only or ["B1", "B2", "B3", "B4", "B5"])
    template = args.template
    assembly = Assembly(json.loads(template.read_text()), template) if template else stack_assembly()
    measures: dict[str, Callable[[], Figure]] = {
        "B1": lambda: b1_suite(args.repeat),
        "B2": lambda: b2_cold_import(assembly.function(), args.repeat * 10),
        "B3": lambda: b3_throughput(assembly, args.repeat, args.records),
        "B4": lambda: b4_asset(assembly),
        "B5": lambda: b5_local(args.repeat, args.messages),
    }
    figures = []
    for name in sorted(wanted):
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        figures.append(measures[name]())
    print(table(figures))
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python -m ops.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "figures": {figure.name: asdict(figure) | {"met": figure.met} for figure in figures},
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
