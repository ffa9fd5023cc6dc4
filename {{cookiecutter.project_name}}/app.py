#!/usr/bin/env python3
"""CDK app: settings -> stack -> checks -> synth. Pick another stage with `cdk synth -c stage=prod`."""

import aws_cdk as cdk

from {{ cookiecutter.__package_name }}.checks import add_checks
from {{ cookiecutter.__package_name }}.settings import ANSWERS
from {{ cookiecutter.__package_name }}.stack import QueueStack

app = cdk.App()
settings = ANSWERS.for_stage(app.node.try_get_context("stage"))
QueueStack(app, settings=settings)
add_checks(app)
app.synth()
