#!/usr/bin/env python3
"""CDK app: settings -> stack -> checks -> synth. Pick another stage with `cdk synth -c stage=prod`, a Powertools
layer of your own with `-c powertools_layer_arn=arn:...` (settings.CONTEXT_KEYS)."""

import aws_cdk as cdk

from {{ cookiecutter.__package_name }}.checks import add_checks
from {{ cookiecutter.__package_name }}.settings import ANSWERS
from {{ cookiecutter.__package_name }}.stack import QueueStack

app = cdk.App()
settings = ANSWERS.with_context(app.node.try_get_context)
QueueStack(app, settings=settings)
add_checks(app)
app.synth()
