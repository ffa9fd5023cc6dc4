"""AWS CDK infrastructure of {{ cookiecutter.project_name }}:
API Gateway -> SQS (+ dead-letter queue) -> Lambda worker."""
