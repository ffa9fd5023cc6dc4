"""Check, before a deploy, what CloudFormation would only find out when creating the change set.

    make preflight                                   # the region your AWS configuration deploys to
    make preflight POWERTOOLS_LAYER_ARN=arn:...      # with a layer of your own (as `make deploy` passes it on)

The worker's Powertools layer is resolved at deploy time from a public SSM parameter that the Powertools team
publishes in the commercial regions they list (not in China or GovCloud), and a version-pinned parameter has been
missing before. Without it, the whole deploy fails with "Unable to fetch parameters". This check looks the
parameter up in the target region and, when it is missing, says which override to use. `make deploy` runs it first.
"""

from __future__ import annotations

import argparse
import os
import sys
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


def main(argv: list[str] | None = None, *, session: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default=None, help=f"stage to deploy (default {ANSWERS.stage})")
    parser.add_argument("--powertools-layer-arn", default="", help="the override `make deploy` will pass to cdk")
    args = parser.parse_args(argv)
    overrides = {"stage": args.stage, "powertools_layer_arn": args.powertools_layer_arn or None}
    settings = ANSWERS.with_context(overrides.get)
    session = session or boto3.session.Session()
    # The region `cdk deploy` uses: AWS_REGION first (the CDK CLI reads it; boto3 reads only AWS_DEFAULT_REGION),
    # then the session's (AWS_DEFAULT_REGION, the profile).
    region = os.environ.get("AWS_REGION") or session.region_name
    if not region:
        print("preflight: no AWS region configured (set AWS_REGION or a profile's region)", file=sys.stderr)
        return 1
    try:
        problems = check_powertools_layer(settings, session.client("ssm", region_name=region), region)
    except BotoCoreError as error:  # no credentials, no network
        problems = [f"could not reach AWS in {region}: {error}"]
    for problem in problems:
        print(f"preflight: {problem}", file=sys.stderr)
    if not problems:
        print(f"preflight: {settings.stack_name} can resolve everything it needs in {region}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
