"""The one stack: queue pair, worker, API and monitoring, composed from one settings object."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from .encryption import customer_key
from .fanout import ResultsTopic
from .idempotency import IdempotencyTable
from .monitoring import Monitoring
from .network import WorkerNetwork
from .queue import QueueWithDeadLetter
from .settings import Settings
from .worker import Worker

# isort: split
from .{{ cookiecutter.__api_module }} import {{ cookiecutter.__api_class }}  # the API flavour chosen at generation


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
        # kms-customer: one key encrypts what the stack keeps at rest (queues, alarm topic, log groups); else None.
        self.key = customer_key(self, settings)
        self.queues = QueueWithDeadLetter(self, "Queues", settings=settings, key=self.key)
        # The API flavour says what its worker needs: its entry point, internet access, a connection back.
        api_flavour = {{ cookiecutter.__api_class }}
        self.network = (
            WorkerNetwork(
                self,
                "Network",
                settings=settings,
                key=self.key,
                # Extension layers (e.g. an observability agent) call their vendor's endpoint on the internet.
                internet_egress=api_flavour.worker_needs_internet or bool(settings.worker_extension_layer_arns),
            )
            if settings.worker_vpc == "new"
            else None
        )
        self.worker = Worker(
            self,
            "Worker",
            settings=settings,
            queues=self.queues,
            handler=api_flavour.worker_handler,
            network=self.network,
            key=self.key,
        )
        self.results = (
            ResultsTopic(self, "Results", settings=settings, key=self.key, publisher=self.worker)
            if settings.result_topic == "sns"
            else None
        )
        self.idempotency = (
            IdempotencyTable(self, "Idempotency", settings=settings, key=self.key, worker=self.worker)
            if settings.idempotency == "dynamodb"
            else None
        )
        self.api = api_flavour(self, "Api", settings=settings, queues=self.queues)
        self.api.connect_worker(self.worker)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            queues=self.queues,
            worker=self.worker.function,
            api=self.api.metrics,
            results=self.results.topic if self.results else None,
        )
