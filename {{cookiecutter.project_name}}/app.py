#!/usr/bin/env python3
"""CDK app: settings -> stack -> checks -> synth. Pick another stage with `cdk synth -c stage=prod`, a Powertools
layer of your own with `-c powertools_layer_arn=arn:...` (settings.CONTEXT_KEYS)."""

import os

import aws_cdk as cdk

from {{ cookiecutter.__package_name }}.checks import add_checks
from {{ cookiecutter.__package_name }}.settings import ANSWERS
from {{ cookiecutter.__package_name }}.stack import QueueStack

app = cdk.App()
settings = ANSWERS.with_context(app.node.try_get_context)
# The CLI sets CDK_DEFAULT_ACCOUNT when it finds credentials (and CDK_DEFAULT_REGION, us-east-1 at worst): with both,
# the stack knows where it deploys (the VPC option looks up Availability Zones there); without credentials, as in
# tests and CI, it stays environment-agnostic.
account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
QueueStack(app, settings=settings, env=cdk.Environment(account=account, region=region) if account and region else None)
add_checks(app)
app.synth()
