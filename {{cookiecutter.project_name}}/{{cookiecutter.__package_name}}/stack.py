"""The one stack: queue pair, worker and API, composed from one settings object."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from .{{ cookiecutter.__api_module }} import {{ cookiecutter.__api_class }}
from .queue import QueueWithDeadLetter
from .settings import Settings
from .worker import Worker


class QueueStack(Stack):
    def __init__(self, scope: Construct, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            scope,
            settings.stack_name,
            stack_name=settings.stack_name,
            description=settings.description,
            termination_protection=settings.prod_like,
            **kwargs,
        )
        self.settings = settings
        self.queues = QueueWithDeadLetter(self, "Queues", settings=settings)
        self.worker = Worker(self, "Worker", settings=settings, queue=self.queues.queue)
        self.api = {{ cookiecutter.__api_class }}(self, "Api", settings=settings, queues=self.queues)
