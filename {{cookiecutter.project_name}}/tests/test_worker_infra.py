"""The worker function and the event source mapping that feeds it."""

from __future__ import annotations

import importlib
import json
import tomllib
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from conftest import arn_of

PROJECT = Path(__file__).resolve().parent.parent


def newest_python_runtime() -> str:
    """The newest Python runtime this aws-cdk-lib knows (Runtime.PYTHON_3_N), found without settings.py."""
    names = [name for name in dir(lambda_.Runtime) if name.startswith("PYTHON_3_")]
    return getattr(lambda_.Runtime, max(names, key=lambda name: int(name.removeprefix("PYTHON_3_")))).name


def test_worker_runs_the_current_python_runtime_on_arm64(synthesized, answers, expected):
    function = synthesized.only("AWS::Lambda::Function")
    assert function["FunctionName"] == expected.worker_name
    assert function["Runtime"] == newest_python_runtime()
    assert function["Architectures"] == ["arm64"]
    wanted = {"websocket": "replies.lambda_handler"}.get(answers["api_flavour"], "handler.lambda_handler")
    assert function["Handler"] == wanted


def test_worker_entry_point_exists_in_the_worker_code(synthesized, monkeypatch):
    module_name, function_name = synthesized.only("AWS::Lambda::Function")["Handler"].split(".")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert callable(getattr(importlib.import_module(module_name), function_name))


def test_worker_timeout_and_memory_are_as_asked(synthesized, expected):
    function = synthesized.only("AWS::Lambda::Function")
    assert function["Timeout"] == expected.worker_timeout
    assert function["MemorySize"] == expected.worker_memory


def test_worker_is_traced_and_told_its_queue_type(synthesized, answers):
    function = synthesized.only("AWS::Lambda::Function")
    assert function["TracingConfig"] == {"Mode": "Active"}
    environment = function["Environment"]["Variables"]
    assert environment["QUEUE_TYPE"] == answers["queue_type"]
    # The stage keeps two stages' metrics (and the alarms on them) apart in one account.
    stage_prefix = f"{answers['project_name']}-{answers['stage']}"
    assert (environment["POWERTOOLS_SERVICE_NAME"], environment["POWERTOOLS_METRICS_NAMESPACE"]) == (stage_prefix,) * 2


def test_the_worker_role_may_upload_its_traces(synthesized):
    """The worker's traces come from Lambda's active tracing alone (no X-Ray SDK in the worker); Lambda refuses to
    create a function with active tracing whose role may not call xray:PutTraceSegments and PutTelemetryRecords."""
    role_id = synthesized.only("AWS::Lambda::Function")["Role"]["Fn::GetAtt"][0]
    granted = {
        action
        for statement in synthesized.statements_of(role_id)
        if statement["Effect"] == "Allow" and statement["Resource"] == "*"
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= granted


def test_event_source_mapping_batches_as_asked_and_reports_item_failures(synthesized, expected):
    mapping = synthesized.only("AWS::Lambda::EventSourceMapping")
    assert mapping["BatchSize"] == expected.batch_size
    assert mapping.get("MaximumBatchingWindowInSeconds", 0) == expected.batching_window
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": expected.max_concurrency}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == arn_of(synthesized.queue_id(expected.queue_name))
    assert mapping["FunctionName"] == {"Ref": synthesized.only_id("AWS::Lambda::Function")}


def test_powertools_layer_is_the_version_the_tests_run(synthesized):
    """The layer's public SSM parameter names the runtime and the Powertools version pinned for the tests."""
    function = synthesized.only("AWS::Lambda::Function")
    [layer] = function["Layers"]
    parameter = synthesized.json["Parameters"][layer["Ref"]]
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    [pin] = [d for d in pyproject["project"]["optional-dependencies"]["dev"] if d.startswith("aws-lambda-powertools")]
    version = pin.split("==")[1]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == f"/aws/service/powertools/python/arm64/{function['Runtime']}/{version}"


def test_worker_code_asset_holds_the_worker_modules_only(synthesized):
    code = synthesized.only("AWS::Lambda::Function")["Code"]
    manifest_path = synthesized.template_path.with_name(f"{synthesized.stack.stack_name}.assets.json")
    manifest = json.loads(manifest_path.read_text())
    asset = synthesized.outdir / manifest["files"][code["S3Key"].removesuffix(".zip")]["source"]["path"]
    shipped = sorted(p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file())
    assert shipped == sorted([p.name for p in (PROJECT / "worker").glob("*.py")] + ["schemas/message.json"])
    assert (asset / "schemas" / "message.json").read_bytes() == (PROJECT / "schemas" / "message.json").read_bytes()


def test_worker_role_has_no_managed_policy_and_writes_only_its_own_log_group(synthesized, expected):
    function = synthesized.only("AWS::Lambda::Function")
    role_id = function["Role"]["Fn::GetAtt"][0]
    role = synthesized.json["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    log_group_id = synthesized.log_group_id(f"/aws/lambda/{expected.worker_name}")
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}
    statements = synthesized.statements_of(role_id)
    log_statements = [s for s in statements if any(a.startswith("logs:") for a in s["Action"])]
    assert log_statements == [
        {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow", "Resource": arn_of(log_group_id)}
    ]
    retention = synthesized.json["Resources"][log_group_id]["Properties"]["RetentionInDays"]
    assert retention == (365 if expected.prod_like else 14)
    assert json.dumps(statements).count("sqs:SendMessage") == 1  # to the dead-letter queue, below


def test_the_worker_may_receive_delete_and_decrypt_from_its_queue_only(synthesized, expected):
    """What the event source mapping needs of the worker's role (Lambda guide: ReceiveMessage, DeleteMessage,
    GetQueueAttributes, and kms:Decrypt with a customer key), on this queue alone; on the DLQ only SendMessage,
    for the messages it rejects (and the customer key's data key, to encrypt them)."""
    role_id = synthesized.only("AWS::Lambda::Function")["Role"]["Fn::GetAtt"][0]
    statements = synthesized.statements_of(role_id)

    def actions_on(resource) -> set[str]:
        return {
            action
            for s in statements
            if s["Resource"] == resource
            for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }

    queue = arn_of(synthesized.queue_id(expected.queue_name))
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= actions_on(queue)
    assert "sqs:SendMessage" not in actions_on(queue)
    assert actions_on(arn_of(synthesized.queue_id(expected.dlq_name))) == {"sqs:SendMessage"}
    keys = list(synthesized.resources("AWS::KMS::Key"))
    with_results = {"kms:GenerateDataKey", "kms:Decrypt"}  # the DLQ's and the results topic's data keys
    with_table = {"kms:Encrypt", "kms:DescribeKey"} if expected.idempotency == "dynamodb" else set()
    for key_id in keys:
        assert actions_on(arn_of(key_id)) == with_results | with_table
