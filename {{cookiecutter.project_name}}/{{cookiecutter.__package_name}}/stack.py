"""The one stack: queue pair, worker, API and monitoring, composed from one settings object."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from .{{ cookiecutter.__api_module }} import {{ cookiecutter.__api_class }}
from .monitoring import Monitoring
from .network import WorkerNetwork
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
        self.network = WorkerNetwork(self, "Network", settings=settings) if settings.worker_vpc == "new" else None
        self.worker = Worker(self, "Worker", settings=settings, queue=self.queues.queue, network=self.network)
        self.api = {{ cookiecutter.__api_class }}(self, "Api", settings=settings, queues=self.queues)
        if settings.api_flavour == "websocket":
            # The worker answers each sender through the API's @connections endpoint (worker/replies.py).
            self.api.enable_replies(self.worker)
        self.monitoring = Monitoring(
            self, "Monitoring", settings=settings, queues=self.queues, worker=self.worker.function, api=self.api.metrics
        )
