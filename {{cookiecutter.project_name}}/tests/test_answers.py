"""The settings hold exactly the answers given when the project was generated (.cookiecutter.json), field by field:
a template that wires one answer into the wrong setting, or changes it on the way, fails here."""

from __future__ import annotations

import dataclasses

# .cookiecutter.json key -> Settings field (the names differ where the settings say what the value is)
FIELDS = {
    "project_name": "project_name",
    "description": "description",
    "stage": "stage",
    "api_flavour": "api_flavour",
    "api_auth": "api_auth",
    "api_throttling": "api_rate_limit",
    "api_burst": "api_burst_limit",
    "queue_type": "queue_type",
    "queue_encryption": "queue_encryption",
    "queue_retention_days": "queue_retention_days",
    "dlq_retries": "dlq_retries",
    "batch_size": "batch_size",
    "batching_window_seconds": "batching_window_seconds",
    "max_concurrency": "max_concurrency",
    "worker_timeout_seconds": "worker_timeout_seconds",
    "worker_memory_mb": "worker_memory_mb",
    "alarm_email": "alarm_email",
    "worker_vpc": "worker_vpc",
    "result_topic": "result_topic",
    "idempotency": "idempotency",
}
# Settings fields that no answer sets: the defaults a user may change in settings.py.
NOT_ANSWERED = {
    "worker_extension_layer_arns",
    "worker_environment",
    "worker_permissions",
    "powertools_layer_arn",
    "worker_availability_zones",
    "idempotency_key_field",
    "idempotency_expiry_seconds",
    "websocket_routes",
    "typical_invocation_seconds",
}


def test_every_answer_reaches_its_setting_unchanged(answers, settings):
    for key, field in FIELDS.items():
        value = getattr(settings, field)
        expected = int(answers[key]) if isinstance(value, int) else answers[key]
        assert value == expected, f"{key} -> {field}: {value!r} != {expected!r}"


def test_every_answer_and_every_setting_is_accounted_for(answers, settings):
    assert set(FIELDS) == set(answers)
    assert set(FIELDS.values()) | NOT_ANSWERED == {f.name for f in dataclasses.fields(settings)}


def test_settings_not_answered_keep_their_neutral_defaults(settings):
    assert settings.worker_extension_layer_arns == ()
    assert dict(settings.worker_environment) == {}
    assert settings.worker_permissions == ()
    assert settings.powertools_layer_arn == ""
    assert settings.worker_availability_zones == ()
    assert settings.idempotency_key_field == "idempotency_key"
    assert settings.idempotency_expiry_seconds == 0  # the queue's retention
    assert settings.websocket_routes == ()
