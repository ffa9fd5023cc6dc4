"""Check, before a deploy, what CloudFormation would only find out when creating the change set.

    make preflight                                   # the region your AWS configuration deploys to
    make preflight POWERTOOLS_LAYER_ARN=arn:...      # with a layer of your own (as `make deploy` passes it on)

Without a region (no AWS_REGION, AWS_DEFAULT_REGION or profile region) it stops at once with one line, and so does
`make deploy`, which would otherwise go to the CDK CLI's fallback region.

The worker's Powertools layer is resolved at deploy time from a public SSM parameter that the Powertools team
publishes in the commercial regions they list (not in China or GovCloud), and a version-pinned parameter has been
missing before. Without it, the whole deploy fails with "Unable to fetch parameters". This check looks the
parameter up in the target region and, when it is missing, says which override to use. `make deploy` runs it first.

On a prod-like stage, `make destroy` keeps the queues, the idempotency table, the log groups and the customer key
(DeletionPolicy Retain), and all but the key keep their fixed names. CloudFormation creates no resource whose name is
taken ("already exists"): it refuses queues and tables before it starts (pre-deployment validation), but finds a log
group only halfway, and the rollback then keeps (Retain) what it had created, which blocks the next attempt too. So
when the stack of a prod-like stage does not exist, this check looks for what the stack keeps and, if any is there,
names each and gives the `cdk import` command that adopts them, data and all, into a new stack. When the stack
exists, or on other stages, it costs one DescribeStacks call, or none.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from {{ cookiecutter.__package_name }}.settings import (
    ANSWERS,
    LAYER_ARN_PATTERN,
    POWERTOOLS_VERSION,
    WORKER_RUNTIME,
    Settings,
)

NO_REGION = "no AWS region: set AWS_REGION or run aws configure set region <region>"


class NoRegion(Exception):
    def __init__(self) -> None:
        super().__init__(NO_REGION)


def deploy_region(session: Any) -> str:
    """The region `cdk deploy` deploys to: AWS_REGION first (the CDK CLI reads it, botocore does not), then
    botocore's own (AWS_DEFAULT_REGION, then the profile's `region`). The ops tools use it too (make redrive)."""
    region = os.environ.get("AWS_REGION") or session.region_name
    if not region:
        raise NoRegion
    return region


def aws_session(session: Any = None) -> tuple[Any, str]:
    """A boto3 session and the deploy region; raises NoRegion, or BotoCoreError (e.g. AWS_PROFILE names no profile)."""
    session = session or boto3.session.Session()
    return session, deploy_region(session)


def check_powertools_layer(settings: Settings, ssm: Any, region: str) -> list[str]:
    """Problems that would stop the deploy because of the Powertools layer; empty when it will resolve."""
    layer = f"Powertools {POWERTOOLS_VERSION} (arm64, {WORKER_RUNTIME})"
    if settings.powertools_layer_arn:
        if not LAYER_ARN_PATTERN.fullmatch(settings.powertools_layer_arn):
            return [f"powertools_layer_arn: {settings.powertools_layer_arn!r} is not a layer version ARN"]
        layer_region = settings.powertools_layer_arn.split(":")[3]
        if layer_region != region:
            return [
                f"powertools_layer_arn: the layer is in {layer_region}, the stack deploys to {region}; "
                "Lambda takes layers from the function's own region only"
            ]
        return []
    parameter = settings.powertools_layer_parameter
    try:
        ssm.get_parameter(Name=parameter)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ParameterNotFound":
            return [f"could not read the SSM parameter {parameter} in {region}: {error}"]
        return [
            f"the SSM parameter {parameter} does not exist in {region}, so the deploy would fail "
            f'("Unable to fetch parameters"). Give the ARN of a {layer} layer in {region} instead: '
            "`make deploy POWERTOOLS_LAYER_ARN=arn:...` (or `cdk deploy -c powertools_layer_arn=arn:...`), or set "
            "powertools_layer_arn in settings.py. Powertools lists the regions of its public layer in its docs "
            "(Installation > Lambda Layer); you can also publish the layer yourself from the PyPI package."
        ]
    return []


# --- what a prod-like stage kept -------------------------------------------------------------------------------------

PROJECT = Path(__file__).resolve().parent.parent
# A stack in one of these holds none of its resources: a create that never ran (its change set failed, e.g. on a name
# conflict) or one rolled back. `cdk deploy` creates the stack afresh, and meets the same names.
EMPTY_STACK_STATES = frozenset({"REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"})
QUEUE_MISSING = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
MESSAGE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class Kept:
    """A resource the stack keeps on `cdk destroy`: its logical id, its fixed name (None: CloudFormation names it, as it
    does a KMS key) and the logical ids it refers to, which an import must adopt with it."""

    logical_id: str
    resource_type: str
    name: str | None
    refers_to: tuple[str, ...]


@dataclass(frozen=True)
class Found:
    """A kept resource that exists: what `cdk import` adopts it by, what it holds, how to delete it (None: nothing to
    delete, as for the key, whose lack of a name stands in nobody's way)."""

    what: str
    name: str
    identifier: dict[str, str]
    holds: str
    delete: str | None = None
    key: str | None = None  # the KMS key it is encrypted with, as the service reports it
    state: str = ""  # the key's: Enabled, Disabled, PendingDeletion


def references(value: Any) -> Iterator[str]:
    """The logical ids a resolved CloudFormation value refers to (Ref, Fn::GetAtt; not pseudo parameters)."""
    if isinstance(value, dict):
        for function, argument in value.items():
            if function == "Ref" and not argument.startswith("AWS::"):
                yield argument
            elif function == "Fn::GetAtt":
                yield argument[0] if isinstance(argument, list) else argument.split(".")[0]
            else:
                yield from references(argument)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def kept_resources(stack: Any) -> list[Kept]:
    """The resources of a constructed stack with DeletionPolicy Retain, read from its constructs (no synth)."""
    from aws_cdk import CfnDeletionPolicy, CfnResource

    kept = []
    for construct in stack.node.find_all():
        if not isinstance(construct, CfnResource) or construct.cfn_options.deletion_policy != CfnDeletionPolicy.RETAIN:
            continue
        properties = stack.resolve(construct._cfn_properties)  # the L1's properties, camelCase, tokens resolved
        # A fixed name is a literal `...Name` property; a name with a token in it (e.g. the REST execution log group's
        # API id) is new with each stack.
        names = [value for key, value in properties.items() if key.endswith("Name") and isinstance(value, str)]
        depends_on = [stack.resolve(resource.logical_id) for resource in construct.obtain_dependencies()]
        kept.append(
            Kept(
                stack.resolve(construct.logical_id),
                construct.cfn_resource_type,
                names[0] if names else None,
                tuple(sorted(set(references(properties)) | set(depends_on))),
            )
        )
    return kept


def kept_by(settings: Settings) -> list[Kept]:
    """What the stack of these settings keeps, built as `cdk deploy` builds it (cdk.json's context) but not synthesized
    and without bundling the worker: a second or two."""
    import aws_cdk as cdk

    from {{ cookiecutter.__package_name }}.stack import QueueStack

    context = json.loads((PROJECT / "cdk.json").read_text()).get("context", {})
    app = cdk.App(context=context | {"aws:cdk:bundling-stacks": []})
    return kept_resources(QueueStack(app, settings=settings))


def amount(count: int, unit: str) -> str:
    return f"{count} {unit}" + ("" if count == 1 else "s")


def queue_left(clients: Callable[[str], Any], name: str) -> Found | None:
    sqs = clients("sqs")
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if error.response["Error"]["Code"] in QUEUE_MISSING:
            return None
        raise
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[*MESSAGE_COUNTS, "KmsMasterKeyId"])
    counts = attributes.get("Attributes", {})
    messages = sum(int(counts.get(count, 0)) for count in MESSAGE_COUNTS)
    # SQS lets a name be used again 60 s after its queue is deleted.
    delete = f"aws sqs delete-queue --queue-url {url}"
    return Found("queue", name, {"QueueUrl": url}, amount(messages, "message"), delete, counts.get("KmsMasterKeyId"))


def table_left(clients: Callable[[str], Any], name: str) -> Found | None:
    try:
        table = clients("dynamodb").describe_table(TableName=name)["Table"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    items = f"about {amount(table.get('ItemCount', 0), 'item')}"  # DynamoDB counts about every six hours
    key = table.get("SSEDescription", {}).get("KMSMasterKeyArn")
    return Found("table", name, {"TableName": name}, items, f"aws dynamodb delete-table --table-name {name}", key)


def log_group_left(clients: Callable[[str], Any], name: str) -> Found | None:
    groups = clients("logs").describe_log_groups(logGroupNamePrefix=name, limit=50)["logGroups"]
    group = next((group for group in groups if group["logGroupName"] == name), None)
    if group is None:
        return None
    stored = group.get("storedBytes", 0)
    holds = f"{stored / 1e6:.1f} MB of logs" if stored >= 100_000 else amount(stored, "byte") + " of logs"
    delete = f"aws logs delete-log-group --log-group-name {name}"
    return Found("log group", name, {"LogGroupName": name}, holds, delete, group.get("kmsKeyId"))


def key_left(clients: Callable[[str], Any], key: str) -> Found | None:
    """The customer key, found through what it encrypts (a key has no name to look it up by)."""
    try:
        metadata = clients("kms").describe_key(KeyId=key)["KeyMetadata"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "NotFoundException":
            return None
        raise
    key_id, state = metadata["KeyId"], metadata["KeyState"]
    return Found("KMS key", key_id, {"KeyId": key_id}, holds="", state=state)


# How preflight looks for each kind of resource the stack keeps under a fixed name (a test checks that this covers
# every one the stack keeps).
LOOKUPS: dict[str, Callable[[Callable[[str], Any], str], Found | None]] = {
    "AWS::SQS::Queue": queue_left,
    "AWS::DynamoDB::Table": table_left,
    "AWS::Logs::LogGroup": log_group_left,
}


def stack_status(cloudformation: Any, stack_name: str) -> str | None:
    """The stack's status; None when it does not exist."""
    try:
        return cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationError" and "does not exist" in str(error):
            return None
        raise


def cdk_cli() -> str:
    """The CDK CLI as `make` runs it: the Makefile's pinned version, with the venv's python for `python3 app.py`."""
    makefile = (PROJECT / "Makefile").read_text()
    pinned = re.search(r"^CDK_CLI_VERSION :?= (\S+)$", makefile, re.MULTILINE)
    return 'PATH="$PWD/.venv/bin:$PATH" npx --yes aws-cdk' + (f"@{pinned.group(1)}" if pinned else "")


def check_kept_resources(
    settings: Settings, session: Any, region: str, given: dict[str, str | None] | None = None
) -> list[str]:
    """Problems that would stop the deploy because of what an earlier `make destroy` kept; empty when there are none.
    `given` holds the context the deploy gets on the command line (stage, powertools_layer_arn)."""
    if not settings.prod_like:
        return []
    try:
        status = stack_status(session.client("cloudformation", region_name=region), settings.stack_name)
    except ClientError as error:
        return [f"could not tell whether {settings.stack_name} exists in {region}: {error}"]
    if status is not None and status not in EMPTY_STACK_STATES:
        return []  # the stack holds them: the deploy updates it

    clients = functools.cache(lambda service: session.client(service, region_name=region))
    kept = {resource.logical_id: resource for resource in kept_by(settings)}
    found: dict[str, Found] = {}
    for resource in kept.values():
        if resource.name is not None and resource.resource_type in LOOKUPS:
            try:
                if (left := LOOKUPS[resource.resource_type](clients, resource.name)) is not None:
                    found[resource.logical_id] = left
            except ClientError as error:
                return [f"could not look for {resource.name} in {region}: {error}"]
    if not found:
        return []
    # The customer key has no name: it is the one the kept resources are encrypted with.
    for resource in kept.values():
        if resource.resource_type == "AWS::KMS::Key" and (
            keys := [found[ref].key for ref in found if resource.logical_id in kept[ref].refers_to and found[ref].key]
        ):
            try:
                if (key := key_left(clients, keys[0])) is not None:
                    found[resource.logical_id] = key
            except ClientError as error:
                return [f"could not look for the KMS key {keys[0]} in {region}: {error}"]
    # An import adopts a resource only with everything it refers to (CloudFormation refuses unresolved references).
    importable = set(found)
    while stuck := {ref for ref in importable if not set(kept[ref].refers_to) <= importable}:
        importable -= stuck
    blockers = {
        ref: f"{kept[ref].name or ref} (gone)" if ref in kept else f"{ref} (made anew by each stack)"
        for left in set(found) - importable
        for ref in kept[left].refers_to
        if ref not in found
    }
    return [leftovers_message(settings, region, status, found, importable, blockers, given or {})]


def leftovers_message(
    settings: Settings,
    region: str,
    status: str | None,
    found: dict[str, Found],
    importable: set[str],
    blockers: dict[str, str],
    given: dict[str, str | None],
) -> str:
    stack, stage = settings.stack_name, settings.stage
    state = f" holds nothing (status {status})" if status else " does not exist"
    lines = [
        f"{stack}{state} in {region}, but these resources of stage {stage} are there under its names, kept by an "
        "earlier `make destroy` (or failed deploy); CloudFormation does not create a resource whose name is taken "
        '("already exists"):'
    ]
    named = [left for left in found.values() if left.delete]
    keys = [left for left in found.values() if not left.delete]
    lines += [f"  {left.what} {left.name} ({left.holds})" for left in named]
    lines += [f"  and the KMS key {key.name} ({key.state}) that encrypts them" for key in keys]
    first = []
    if status:
        first.append(f"  aws cloudformation delete-stack --stack-name {stack} --region {region}  # it holds nothing")
    for key in keys:  # what they hold is unreadable without it
        if key.state == "PendingDeletion":
            first.append(f"  aws kms cancel-key-deletion --key-id {key.name} --region {region}")
        if key.state in ("PendingDeletion", "Disabled"):
            first.append(f"  aws kms enable-key --key-id {key.name} --region {region}")
    lines += ["First:", *first] if first else []
    if importable:
        lines.append("Adopt them into a new stack with what they hold (`cdk import`), then deploy the rest:")
        mapping = json.dumps({ref: found[ref].identifier for ref in found if ref in importable}, separators=(",", ":"))
        layer = given.get("powertools_layer_arn")
        context = f"-c stage={stage}" + (f" -c powertools_layer_arn={layer}" if layer else "")
        lines.append(f"  {cdk_cli()} import {stack} {context} --resource-mapping-inline {shlex.quote(mapping)}")
        lines.append(f"  make deploy STAGE={stage}" + (f" POWERTOOLS_LAYER_ARN={layer}" if layer else ""))
    if stuck := [left for ref, left in found.items() if ref not in importable]:
        lines.append(
            f"`cdk import` cannot adopt {', '.join(f'{left.what} {left.name}' for left in stuck)}: they refer, "
            f"directly or through one another, to {', '.join(blockers.values())}, which an import cannot bring along. "
            "Keep what you need of them first (aws dynamodb create-backup, aws logs create-export-task, receive the "
            "messages), then delete them."
        )
    lines.append(
        ("Or start empty: delete them" if importable else "To deploy, delete them")
        + ", which loses their messages, items and logs for good (SQS frees a queue's name 60 s after deleting it):"
    )
    lines += [f"  {left.delete} --region {region}" for left in named]
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, session: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default=None, help=f"stage to deploy (default {ANSWERS.stage})")
    parser.add_argument("--powertools-layer-arn", default="", help="the override `make deploy` will pass to cdk")
    args = parser.parse_args(argv)
    overrides = {"stage": args.stage, "powertools_layer_arn": args.powertools_layer_arn or None}
    settings = ANSWERS.with_context(overrides.get)
    try:
        session, region = aws_session(session)
    except (NoRegion, BotoCoreError) as error:  # one line, no traceback: `make deploy` stops here
        print(f"preflight: {error}", file=sys.stderr)
        return 1
    try:
        problems = check_powertools_layer(settings, session.client("ssm", region_name=region), region)
        problems += check_kept_resources(settings, session, region, overrides)
    except BotoCoreError as error:  # no credentials, no network
        problems = [f"could not reach AWS in {region}: {error}"]
    for problem in problems:
        print(f"preflight: {problem}", file=sys.stderr)
    if not problems:
        print(f"preflight: {settings.stack_name} can resolve everything it needs in {region}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
