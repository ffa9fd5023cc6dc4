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
# The CLI sets CDK_DEFAULT_ACCOUNT/REGION when it finds credentials: the stack then knows where it deploys (the VPC
# option looks up Availability Zones there); without them, as in tests and CI, the stack stays environment-agnostic.
env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
QueueStack(app, settings=settings, env=env)
add_checks(app)
app.synth()
