"""make preflight: the Powertools layer's public SSM parameter is looked up in the target region before a deploy,
and a missing one is reported with the override to use (botocore's Stubber answers as SSM does). On a prod-like stage
whose stack is gone, what an earlier `make destroy` kept under a fixed name stops the deploy, named, with the
`cdk import` that adopts it (moto holds the leftovers). The deploy role the README documents allows every call it
makes (recorded as botocore makes them, against moto)."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from conftest import PROD_LIKE_STAGE_NAMES, PROJECT, Synthesized
from ops import preflight

REGION = "eu-west-1"
LAYER_HERE = f"arn:aws:lambda:{REGION}:123456789012:layer:powertools:7"


def offline_client(service: str, region: str = REGION) -> Any:
    return boto3.client(service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x")


def deployed_stack(region: str) -> Any:
    """A CloudFormation client that finds the stack deployed (what a prod-like stage asks before anything else)."""
    cloudformation = offline_client("cloudformation", region)
    stubber = Stubber(cloudformation)
    stack = {"StackName": "deployed", "CreationTime": datetime.now(UTC), "StackStatus": "UPDATE_COMPLETE"}
    stubber.add_response("describe_stacks", {"Stacks": [stack]})
    stubber.activate()
    return cloudformation


class StubbedSession:
    """A boto3 session whose SSM client answers from a Stubber (and whose stack, on a prod-like stage, is deployed)."""

    def __init__(self, region: str | None = REGION) -> None:
        self.region_name = region
        self.ssm = offline_client("ssm")
        self.stubber = Stubber(self.ssm)

    def client(self, service: str, region_name: str):
        if service == "cloudformation":
            return deployed_stack(region_name)
        assert service == "ssm"
        self.asked_region = region_name  # the region SSM is asked in
        return self.ssm


@pytest.fixture
def parameter(synthesized) -> str:
    """The Powertools team's public parameter for the layer this worker needs: arm64, the function's runtime, and
    the Powertools version the tests run (pyproject.toml), which the layer must match."""
    runtime = synthesized.only("AWS::Lambda::Function")["Runtime"]
    [version] = re.findall(r'"aws-lambda-powertools\[[a-z,]+\]==([0-9.]+)"', (PROJECT / "pyproject.toml").read_text())
    return f"/aws/service/powertools/python/arm64/{runtime}/{version}"


@pytest.fixture
def session(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    session = StubbedSession()
    with session.stubber:
        yield session
    session.stubber.assert_no_pending_responses()


def test_the_deploy_may_go_ahead_when_the_region_has_the_parameter(session, parameter, expected, capsys):
    session.stubber.add_response(
        "get_parameter",
        {"Parameter": {"Name": parameter, "Type": "String", "Value": LAYER_HERE}},
        {"Name": parameter},
    )
    assert preflight.main([], session=session) == 0
    assert f"{expected.stack_name} can resolve everything it needs in {REGION}" in capsys.readouterr().out
    assert session.asked_region == REGION


def test_a_missing_parameter_stops_the_deploy_and_names_the_override(session, parameter, capsys):
    session.stubber.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": parameter})
    assert preflight.main([], session=session) == 1
    err = capsys.readouterr().err
    assert f"the SSM parameter {parameter} does not exist in {REGION}" in err
    assert "make deploy POWERTOOLS_LAYER_ARN=arn:..." in err and "-c powertools_layer_arn=" in err


def test_a_parameter_that_cannot_be_read_is_reported_as_such(session, parameter, capsys):
    session.stubber.add_client_error("get_parameter", "AccessDeniedException")
    assert preflight.main([], session=session) == 1
    assert f"could not read the SSM parameter {parameter}" in capsys.readouterr().err


def test_an_override_in_the_region_needs_no_parameter(session):
    assert preflight.main(["--powertools-layer-arn", LAYER_HERE], session=session) == 0


def test_an_override_from_another_region_is_refused(session, capsys):
    elsewhere = "arn:aws:lambda:us-east-1:123456789012:layer:powertools:7"
    assert preflight.main(["--powertools-layer-arn", elsewhere], session=session) == 1
    assert "the layer is in us-east-1, the stack deploys to eu-west-1" in capsys.readouterr().err


def test_no_region_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    assert preflight.main([], session=StubbedSession(region=None)) == 1
    assert capsys.readouterr().err == f"preflight: {preflight.NO_REGION}\n"


def test_aws_region_is_the_deploy_region_as_for_the_cdk_cli(monkeypatch, capsys):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    elsewhere = "arn:aws:lambda:eu-west-1:123456789012:layer:powertools:7"
    session = StubbedSession(region="eu-west-1")
    assert preflight.main(["--powertools-layer-arn", elsewhere], session=session) == 1
    assert "the stack deploys to us-east-1" in capsys.readouterr().err
    assert session.asked_region == "us-east-1"


# --- a prod-like stage whose stack is gone, and what its `make destroy` kept -----------------------------------------


@pytest.fixture(scope="module")
def prod_stage(answers) -> str:
    return answers["stage"] if answers["stage"] in PROD_LIKE_STAGE_NAMES else "prod"


@pytest.fixture(scope="module")
def prod_like(settings, prod_stage, tmp_path_factory) -> Synthesized:
    """The stack of a prod-like stage with all it can keep (customer key, idempotency table, VPC flow logs), synthesized
    once with the checks on."""
    options = {"queue_encryption": "kms-customer", "idempotency": "dynamodb", "worker_vpc": "new"}
    variant = dataclasses.replace(settings, stage=prod_stage, result_topic="sns", **options)
    return Synthesized(variant, tmp_path_factory.mktemp("cdk.out-prod"))


@pytest.fixture(scope="module")
def kept(prod_like) -> list[preflight.Kept]:
    return preflight.kept_resources(prod_like.stack)


@pytest.fixture
def kept_asked(monkeypatch, kept) -> list[str]:
    """preflight builds the stack to learn what it keeps (kept_by, seconds of jsii); here it gets the prod-like stack
    built once. The list holds the stage of each time it asked."""
    asked = []

    def kept_by(settings):
        asked.append(settings.stage)
        return kept

    monkeypatch.setattr(preflight, "kept_by", kept_by)
    return asked


@dataclass
class Left:
    """What `make destroy` of the prod-like stage left behind (in moto), under the names the design contract fixes."""

    queues: dict[str, str]  # name: URL
    table: str | None
    log_groups: list[str]
    key_id: str


def moto_session() -> Any:
    return boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def leave_behind(answers, stage, *, queues=("queue", "dlq"), table=True, logs=True, key_state="Enabled") -> Left:
    session = moto_session()
    prefix, fifo = f"{answers['project_name']}-{stage}", answers["queue_type"] == "fifo"
    kms = session.client("kms")
    key = kms.create_key(Description="the retained customer key")["KeyMetadata"]
    if key_state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    sqs = session.client("sqs")
    urls = {}
    for queue in queues:
        name = f"{prefix}-{queue}" + (".fifo" if fifo else "")
        attributes = {"KmsMasterKeyId": key["Arn"]} | ({"FifoQueue": "true"} if fifo else {})
        urls[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    table_name = f"{prefix}-idempotency" if table else None
    if table_name:
        session.client("dynamodb").create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key["Arn"]},
        )
    log_groups = []
    if logs:
        api = f"{prefix}-{answers['api_flavour']}-api"
        log_groups = [f"/aws/lambda/{prefix}-worker", f"/aws/apigateway/{api}/access", f"/aws/vpc/{prefix}/flow-logs"]
        for name in log_groups:
            session.client("logs").create_log_group(logGroupName=name, kmsKeyId=key["Arn"])
    return Left(urls, table_name, log_groups, key["KeyId"])


def deploy_check(stage: str, session: Any = None) -> int:
    """`make preflight STAGE=...` with a layer of its own (no SSM parameter to look up), against moto."""
    return preflight.main(["--stage", stage, "--powertools-layer-arn", LAYER_HERE], session=session or moto_session())


@pytest.fixture(scope="module")
def prod_stack(answers, prod_stage) -> str:
    return f"{answers['project_name']}-{prod_stage}-queue-stack"


def import_mapping(err: str, stack_name: str, stage: str) -> dict[str, dict[str, str]]:
    """The resource mapping of the `cdk import` command preflight prints, run with the Makefile's CDK CLI ({}: none)."""
    [pinned] = re.findall(r"^CDK_CLI_VERSION :?= (\S+)$", (PROJECT / "Makefile").read_text(), re.MULTILINE)
    command = rf"npx --yes aws-cdk@{re.escape(pinned)} import {stack_name} -c stage={stage}\S* "
    mappings = re.findall(command + r"(?:-c \S+ )?--resource-mapping-inline '(.*)'$", err, re.MULTILINE)
    assert len(mappings) <= 1
    return json.loads(mappings[0]) if mappings else {}


def template_references(synthesized: Synthesized, logical_id: str) -> set[str]:
    """What a resource of the template refers to (Ref, Fn::GetAtt, DependsOn): an import must bring it along."""
    body = synthesized.json["Resources"][logical_id]
    text = json.dumps(body.get("Properties", {}))
    depends = body.get("DependsOn", [])
    refs = set(re.findall(r'"Ref": "(\w+)"', text)) | set(re.findall(r'"Fn::GetAtt": \["(\w+)"', text))
    return refs | set([depends] if isinstance(depends, str) else depends)


def importable(synthesized: Synthesized, present: set[str]) -> set[str]:
    """What CloudFormation can import of the present resources: each only with everything it refers to."""
    adoptable = set(present)
    while stuck := {ref for ref in adoptable if not template_references(synthesized, ref) <= adoptable}:
        adoptable -= stuck
    return adoptable


def test_what_preflight_reads_from_the_constructs_is_what_the_template_retains(prod_like, kept):
    def names(properties: dict[str, Any]) -> list[str]:
        return [v for k, v in properties.items() if k.endswith("Name") and isinstance(v, str)]

    retained = {
        (logical_id, resource["Type"], (names(resource.get("Properties", {})) or [None])[0])
        for logical_id, resource in prod_like.json["Resources"].items()
        if resource.get("DeletionPolicy") == "Retain"
    }
    assert {(k.logical_id, k.resource_type, k.name) for k in kept} == retained
    for resource in kept:
        assert set(resource.refers_to) == template_references(prod_like, resource.logical_id)


def test_preflight_looks_for_every_kind_of_resource_the_stack_keeps_under_a_fixed_name(kept):
    named = {resource.resource_type for resource in kept if resource.name}
    assert named == {"AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Logs::LogGroup"}  # as the README's Stages says
    assert named <= set(preflight.LOOKUPS)
    # The customer key is kept but has no name; its alias goes with the stack (CloudFormation deletes it).
    assert [resource.name for resource in kept if resource.resource_type == "AWS::KMS::Key"] == [None]
    assert "AWS::KMS::Alias" not in {resource.resource_type for resource in kept}


def test_the_kept_key_refers_to_nothing_a_new_stack_makes(kept):
    """So that `cdk import` can adopt the key, and with it the queues, table and log groups it encrypts."""
    [key] = [resource for resource in kept if resource.resource_type == "AWS::KMS::Key"]
    assert set(key.refers_to) <= {resource.logical_id for resource in kept}


def test_preflight_builds_the_stack_as_the_deploy_does(prod_like, kept):
    """kept_by (cdk.json's context, no synth, no bundling) finds the logical ids of a checked synth."""
    assert preflight.kept_by(prod_like.stack.settings) == kept


def group_of(answers) -> dict[str, str]:
    return {"MessageGroupId": "g", "MessageDeduplicationId": "d"} if answers["queue_type"] == "fifo" else {}


def test_a_prod_stage_whose_stack_is_gone_stops_on_what_it_kept_and_names_each(
    answers, prod_stage, prod_stack, prod_like, kept_asked, monkeypatch, capsys
):
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        left = leave_behind(answers, prod_stage)
        [dlq] = [name for name in left.queues if "-dlq" in name]
        moto_session().client("sqs").send_message(QueueUrl=left.queues[dlq], MessageBody="{}", **group_of(answers))
        assert deploy_check(prod_stage) == 1
    err = capsys.readouterr().err
    assert f"{prod_stack} does not exist in {REGION}" in err and '"already exists"' in err
    for name in [*left.queues, left.table, *left.log_groups, left.key_id]:
        assert name in err
    assert f"queue {dlq} (1 message)" in err
    # the import adopts each by its CloudFormation identifier, under the logical id the deploy synthesizes
    expected = {prod_like.queue_id(name): {"QueueUrl": url} for name, url in left.queues.items()}
    expected[prod_like.named("AWS::DynamoDB::Table", "TableName", left.table)] = {"TableName": left.table}
    expected |= {prod_like.log_group_id(name): {"LogGroupName": name} for name in left.log_groups}
    expected[prod_like.only_id("AWS::KMS::Key")] = {"KeyId": left.key_id}
    adoptable = importable(prod_like, set(expected))  # all of them
    assert import_mapping(err, prod_stack, prod_stage) == {ref: expected[ref] for ref in adoptable}
    assert (f"make deploy STAGE={prod_stage} POWERTOOLS_LAYER_ARN={LAYER_HERE}" in err) == bool(adoptable)
    assert ("`cdk import` cannot adopt" in err) == (adoptable != set(expected))
    # deleting instead is offered last, and says what it loses
    assert "loses their messages, items and logs" in err
    assert f"aws dynamodb delete-table --table-name {left.table} --region {REGION}" in err
    assert err.index("Adopt" if adoptable else "cannot adopt") < err.index("delete-table")
    assert kept_asked == [prod_stage]


A_TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


def test_with_its_stack_deployed_a_prod_stage_passes_without_looking(
    answers, prod_stage, prod_stack, kept_asked, monkeypatch, capsys
):
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        leave_behind(answers, prod_stage)  # the stack holds them
        moto_session().client("cloudformation").create_stack(StackName=prod_stack, TemplateBody=A_TEMPLATE)
        assert deploy_check(prod_stage) == 0
    assert capsys.readouterr().err == "" and kept_asked == []


def test_the_first_deploy_of_a_prod_stage_passes(prod_stage, kept_asked, monkeypatch, capsys):
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        assert deploy_check(prod_stage) == 0
    assert capsys.readouterr().err == "" and kept_asked == [prod_stage]


def test_a_dev_stage_never_looks(answers, prod_stage, kept_asked, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    calls = []
    with mock_aws():
        leave_behind(answers, "dev")  # even what a dev stage's names would collide with
        session = moto_session()
        session.events.register("provide-client-params.*.*", lambda model, **_: calls.append(model.name))
        assert preflight.main(["--stage", "dev", "--powertools-layer-arn", LAYER_HERE], session=session) == 0
    assert calls == [] and kept_asked == []


def test_a_key_scheduled_for_deletion_is_restored_before_the_import(
    answers, prod_stage, kept_asked, monkeypatch, capsys
):
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        left = leave_behind(answers, prod_stage, key_state="PendingDeletion")
        assert deploy_check(prod_stage) == 1
    err = capsys.readouterr().err
    assert f"the KMS key {left.key_id} (PendingDeletion)" in err
    cancel, enable = f"aws kms cancel-key-deletion --key-id {left.key_id}", f"aws kms enable-key --key-id {left.key_id}"
    assert err.index("First:") < err.index(cancel) < err.index(enable) < err.index("delete them")


def test_the_empty_stack_of_a_failed_create_is_deleted_before_the_import(
    answers, prod_stage, prod_stack, kept_asked, monkeypatch, capsys
):
    """A create whose change set failed (e.g. on these very names) leaves its stack in REVIEW_IN_PROGRESS, empty."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        leave_behind(answers, prod_stage, logs=False)
        moto_session().client("cloudformation").create_change_set(
            StackName=prod_stack, ChangeSetName="cdk-deploy-change-set", ChangeSetType="CREATE", TemplateBody=A_TEMPLATE
        )
        assert deploy_check(prod_stage) == 1
    err = capsys.readouterr().err
    assert f"{prod_stack} holds nothing (status REVIEW_IN_PROGRESS)" in err
    delete = f"aws cloudformation delete-stack --stack-name {prod_stack} --region {REGION}"
    assert err.index("First:") < err.index(delete) < err.index("delete them")


def test_a_queue_whose_dead_letter_queue_is_gone_is_not_imported_but_named(
    answers, prod_stage, prod_stack, prod_like, kept_asked, monkeypatch, capsys
):
    """CloudFormation imports nothing whose references are missing: the queue redrives to the DLQ."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        left = leave_behind(answers, prod_stage, queues=("queue",), logs=False)
        assert deploy_check(prod_stage) == 1
    err = capsys.readouterr().err
    [(queue, url)] = left.queues.items()
    [cannot] = [line for line in err.splitlines() if line.startswith("`cdk import` cannot adopt")]
    assert f"queue {queue}" in cannot and f"{queue.replace('-queue', '-dlq')} (gone)" in cannot
    present = {
        prod_like.queue_id(queue): {"QueueUrl": url},
        prod_like.named("AWS::DynamoDB::Table", "TableName", left.table): {"TableName": left.table},
        prod_like.only_id("AWS::KMS::Key"): {"KeyId": left.key_id},
    }
    adoptable = importable(prod_like, set(present))
    assert prod_like.queue_id(queue) not in adoptable
    assert import_mapping(err, prod_stack, prod_stage) == {ref: present[ref] for ref in adoptable}


def test_a_stack_that_cannot_be_described_is_reported_not_guessed(prod_stage, kept_asked, monkeypatch, capsys):
    monkeypatch.delenv("AWS_REGION", raising=False)
    session = StubbedSession()
    cloudformation = offline_client("cloudformation")
    denied = Stubber(cloudformation)
    denied.add_client_error("describe_stacks", "AccessDenied", "not authorized: cloudformation:DescribeStacks")
    denied.activate()
    session.client = lambda service, region_name: cloudformation
    assert deploy_check(prod_stage, session) == 1
    assert "could not tell whether" in capsys.readouterr().err and kept_asked == []


# --- the deploy role of README "Deploying from CI" allows every AWS call make preflight makes -----------------------

ACCOUNT = "123456789012"
# The resource each call acts on, as IAM names it. A call preflight starts making fails the test below until it is
# added here, and its permission to the README's policy.
RESOURCE_OF = {
    "ssm:GetParameter": lambda region, params: f"arn:aws:ssm:{region}::parameter/{params['Name'].lstrip('/')}",
    "cloudformation:DescribeStacks": lambda region, params: (
        f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{params['StackName']}/*"
    ),
    "sqs:GetQueueUrl": lambda region, params: f"arn:aws:sqs:{region}:{ACCOUNT}:{params['QueueName']}",
    "sqs:GetQueueAttributes": lambda region, params: (
        f"arn:aws:sqs:{region}:{ACCOUNT}:{params['QueueUrl'].rsplit('/', 1)[1]}"
    ),
    "dynamodb:DescribeTable": lambda region, params: f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{params['TableName']}",
    # A list action: IAM authorizes it on the account's log groups, not on the one named by the prefix.
    "logs:DescribeLogGroups": lambda region, params: f"arn:aws:logs:{region}:{ACCOUNT}:log-group:*",
    "kms:DescribeKey": lambda region, params: f"arn:aws:kms:{region}:{ACCOUNT}:key/{params['KeyId'].split('/')[-1]}",
}
# What preflight calls to look for what a prod-like stage kept (the fixture below must make each of them).
LOOKING_FOR_WHAT_WAS_KEPT = set(RESOURCE_OF) - {"ssm:GetParameter"}


def documented_deploy_policy() -> dict[str, Any]:
    readme = (PROJECT / "README.md").read_text()
    section = readme.split("## Deploying from CI", 1)[1].split("\n## ", 1)[0]
    [policy] = re.findall(r"```json\n(.*?)```", section, re.DOTALL)
    return json.loads(policy)


def allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    def listed(value: str | list[str]) -> list[str]:
        return [value] if isinstance(value, str) else value

    return any(
        statement["Effect"] == "Allow"
        and any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in listed(statement["Action"]))
        and any(
            fnmatch.fnmatchcase(resource, pattern.replace("<account>", ACCOUNT))
            for pattern in listed(statement["Resource"])
        )
        for statement in policy["Statement"]
    )


@pytest.fixture
def calls_preflight_makes(monkeypatch, answers, prod_stage, kept_asked) -> list[tuple[str, str, dict[str, Any]]]:
    """(IAM action, region, parameters) of every AWS call preflight makes, with the layer's parameter and with an
    override in and out of the region, and for a prod-like stage whose stack is gone but whose queues, table, log
    groups and key are there, with the parameters the client was given (moto answers)."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    calls = []

    def record(model, params, context, **kwargs):
        calls.append((f"{model.service_model.signing_name}:{model.name}", context["client_region"], params))

    def run(argv: list[str]) -> None:
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        session.events.register("provide-client-params.*.*", record)
        preflight.main(argv, session=session)

    elsewhere = "arn:aws:lambda:us-east-1:123456789012:layer:powertools:7"
    with mock_aws():
        for argv in ([], ["--powertools-layer-arn", LAYER_HERE], ["--powertools-layer-arn", elsewhere]):
            run(argv)
        leave_behind(answers, prod_stage)
        run(["--stage", prod_stage])
    return calls


def test_the_documented_deploy_role_allows_every_call_preflight_makes(calls_preflight_makes):
    policy = documented_deploy_policy()
    assert calls_preflight_makes, "no call recorded: is the recorder still wired to preflight's session?"
    for action, region, params in calls_preflight_makes:
        assert action in RESOURCE_OF, f"preflight calls {action}: name its resource in RESOURCE_OF"
        resource = RESOURCE_OF[action](region, params)
        assert allows(policy, action, resource), f'README "Deploying from CI": the role lacks {action} on {resource}'


def test_every_lookup_for_what_a_prod_stage_kept_is_among_the_recorded_calls(calls_preflight_makes):
    assert {action for action, _, _ in calls_preflight_makes} >= LOOKING_FOR_WHAT_WAS_KEPT


def test_a_policy_without_the_parameter_is_caught(calls_preflight_makes):
    """The check above can fail: the deploy role as documented before `make preflight` existed."""
    policy = documented_deploy_policy()
    policy["Statement"] = [s for s in policy["Statement"] if "ssm:GetParameter" not in json.dumps(s)]
    assert not all(allows(policy, a, RESOURCE_OF[a](r, p)) for a, r, p in calls_preflight_makes)
