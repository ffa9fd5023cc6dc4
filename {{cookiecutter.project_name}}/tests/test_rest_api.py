"""REST API: POST /messages -> SQS SendMessage through VTL, validated, 202, throttled, logged, traced, authorized."""

from __future__ import annotations

import json
import re

import pytest

from {{ cookiecutter.__package_name }}.rest_api import MessageSchemaError, message_schema

from conftest import (
    AUTHORIZATION_TYPE,
    PROJECT,
    assert_json_access_logs,
    assert_may_only_send_to_the_queue,
    assert_throttled_as_asked,
    ref,
)

JSON = "application/json"


def method(synthesized):
    return synthesized.only("AWS::ApiGateway::Method")


def integration(synthesized):
    return method(synthesized)["Integration"]


def test_api_carries_the_design_name_and_is_regional(synthesized, expected):
    api = synthesized.only("AWS::ApiGateway::RestApi")
    assert api["Name"] == expected.api_name
    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_post_messages_is_the_only_method(synthesized):
    resource = synthesized.only("AWS::ApiGateway::Resource")
    assert resource["PathPart"] == "messages"
    api_id = synthesized.only_id("AWS::ApiGateway::RestApi")
    assert resource["ParentId"] == {"Fn::GetAtt": [api_id, "RootResourceId"]}
    resource_id = synthesized.only_id("AWS::ApiGateway::Resource")
    assert method(synthesized)["HttpMethod"] == "POST"
    assert method(synthesized)["ResourceId"] == ref(resource_id)
    assert synthesized.resources("AWS::Lambda::Permission") == {}  # no Lambda in the request path


def test_the_method_posts_to_this_queue_through_the_sqs_service_integration(synthesized, expected):
    assert integration(synthesized)["Type"] == "AWS"
    assert integration(synthesized)["IntegrationHttpMethod"] == "POST"
    assert integration(synthesized)["Uri"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":apigateway:",
                {"Ref": "AWS::Region"},
                ":sqs:path/",
                {"Ref": "AWS::AccountId"},
                "/",
                {"Fn::GetAtt": [synthesized.queue_id(expected.queue_name), "QueueName"]},
            ],
        ]
    }


def test_the_integration_sends_a_form_and_never_passes_a_body_through(synthesized):
    assert integration(synthesized)["RequestParameters"] == {
        "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'",
        "integration.request.header.Accept": "'application/json'",
    }
    assert integration(synthesized)["PassthroughBehavior"] == "NEVER"
    assert list(integration(synthesized)["RequestTemplates"]) == [JSON]


def test_the_request_template_encodes_the_body_and_knows_the_queue_type(synthesized, expected):
    template = integration(synthesized)["RequestTemplates"][JSON]
    assert template.startswith(f"#set($fifo = {'true' if expected.fifo else 'false'})##\n")
    assert "&MessageBody=$util.urlEncode($input.body)##" in template


def test_the_post_method_validates_its_body_and_headers(synthesized):
    validator_id = synthesized.only_id("AWS::ApiGateway::RequestValidator")
    validator = synthesized.only("AWS::ApiGateway::RequestValidator")
    assert validator["ValidateRequestBody"] is True
    assert validator["ValidateRequestParameters"] is True
    assert method(synthesized)["RequestValidatorId"] == ref(validator_id)
    assert method(synthesized)["RequestModels"] == {JSON: ref(synthesized.only_id("AWS::ApiGateway::Model"))}


def test_the_body_model_is_schemas_message_json_as_written(synthesized):
    model = synthesized.only("AWS::ApiGateway::Model")
    assert model["ContentType"] == JSON
    assert model["RestApiId"] == ref(synthesized.only_id("AWS::ApiGateway::RestApi"))
    assert model["Schema"] == json.loads((PROJECT / "schemas" / "message.json").read_text())
    assert model["Schema"]["$schema"] == "http://json-schema.org/draft-04/schema#"  # what API Gateway models use


DRAFT_4 = "http://json-schema.org/draft-04/schema#"
# Schemas API Gateway would refuse as a model, or read otherwise than their author (draft 4 ignores the keywords of
# later drafts): each must fail `make synth`, naming the file and where the problem is.
NOT_DRAFT_4 = {
    "numeric-exclusive-minimum": (
        {"properties": {"amount": {"type": "number", "exclusiveMinimum": 0}}},
        ["#/properties/amount/exclusiveMinimum: 0 is not of type 'boolean'", '"minimum": 0, "exclusiveMinimum": true'],
    ),
    "const": ({"properties": {"kind": {"const": "order"}}}, ['#/properties/kind/const: draft 4 has no "const"']),
    "if-then-deep-inside": (
        {"allOf": [{"items": {"if": {"type": "string"}, "then": {"minLength": 1}}}]},
        ['#/allOf/0/items/if: draft 4 has no "if"', "#/allOf/0/items/then"],
    ),
    "defs": ({"$defs": {"id": {"type": "string"}}}, ['#/$defs: draft 4 spells it "definitions"']),
    "draft-7-declared": (
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        ["\"$schema\" is 'http://json-schema.org/draft-07/schema#'"],
    ),
    "not-a-schema": ({"type": "obj", "required": []}, ["#/required: []", "#/type: 'obj'"]),
    "java-only-pattern": (  # API Gateway (Java) reads \p{L}; the worker (Python's re) cannot compile it
        {"properties": {"name": {"type": "string", "pattern": "^\\p{L}+$"}}, "patternProperties": {"\\p{Lu}": {}}},
        ["#/properties/name/pattern: Python's `re` (the worker's) cannot read it", "#/patternProperties/\\p{Lu}: "],
    ),
}


@pytest.mark.parametrize(("schema", "named"), NOT_DRAFT_4.values(), ids=NOT_DRAFT_4.keys())
def test_a_schema_api_gateway_would_refuse_fails_the_synth_naming_the_file_and_the_problem(tmp_path, schema, named):
    path = tmp_path / "message.json"
    path.write_text(json.dumps({"$schema": DRAFT_4, "type": "object"} | schema))
    with pytest.raises(MessageSchemaError) as refused:
        message_schema(path)
    message = str(refused.value)
    assert message.startswith(f"{path} is not a JSON Schema draft 4 document")
    for problem in named:
        assert problem in message, message


def test_a_message_schema_that_is_not_json_fails_the_synth_naming_the_file(tmp_path):
    path = tmp_path / "message.json"
    path.write_text('{"type": "object",}')
    with pytest.raises(MessageSchemaError, match=f"^{re.escape(str(path))} is not JSON: "):
        message_schema(path)


def test_fields_named_like_later_draft_keywords_are_only_fields(tmp_path):
    path = tmp_path / "message.json"
    fields = {name: {"type": "string"} for name in ("const", "if", "$defs", "contains")}
    schema = {"$schema": DRAFT_4, "type": "object", "properties": fields, "required": ["const"]}
    path.write_text(json.dumps(schema))
    assert message_schema(path) == schema


def test_the_message_schema_is_draft_4_as_api_gateway_models_are():
    assert message_schema() == json.loads((PROJECT / "schemas" / "message.json").read_text())


def test_the_deployment_follows_the_model(synthesized):
    # A stage serves the models of its deployment: the deployment must come after the model.
    [deployment] = synthesized.resources("AWS::ApiGateway::Deployment").values()
    assert synthesized.only_id("AWS::ApiGateway::Model") in deployment["DependsOn"]


def test_a_refused_body_gets_400_naming_the_problem_with_the_request_id(synthesized):
    [response] = synthesized.resources("AWS::ApiGateway::GatewayResponse").values()
    response = response["Properties"]
    assert (response["ResponseType"], response["StatusCode"]) == ("BAD_REQUEST_BODY", "400")
    template = response["ResponseTemplates"][JSON]
    assert '"$context.error.validationErrorString"' in template
    assert '"$context.requestId"' in template
    # Not VTL: API Gateway substitutes the variables only. With sample values in their places it is JSON.
    sample = template.replace("$context.error.messageString", '"Invalid request body"').replace("$context.", "")
    assert set(json.loads(sample)) == {"message", "validationErrors", "requestId"}


def test_fifo_requests_must_name_their_message_group(synthesized, expected):
    required = method(synthesized).get("RequestParameters", {})
    assert required == ({"method.request.header.X-Message-Group-Id": True} if expected.fifo else {})


def test_success_answers_202_a_refused_message_400_and_sqs_errors_500_or_502(synthesized):
    responses = {r["StatusCode"]: r.get("SelectionPattern") for r in integration(synthesized)["IntegrationResponses"]}
    assert responses == {"202": None, "400": "400", "500": r"4(0[1-9]|[1-9][0-9])", "502": r"5\d{2}"}
    for response in integration(synthesized)["IntegrationResponses"]:
        assert list(response["ResponseTemplates"]) == [JSON]
    assert [r["StatusCode"] for r in method(synthesized)["MethodResponses"]] == ["202", "400", "500", "502"]


def test_each_sqs_status_picks_exactly_one_integration_response(synthesized):
    # API Gateway matches SelectionPattern against SQS's status code; 2xx falls through to the default (202).
    patterns = {
        r["StatusCode"]: r["SelectionPattern"]
        for r in integration(synthesized)["IntegrationResponses"]
        if "SelectionPattern" in r
    }
    for sqs_status in range(200, 600):
        picked = [code for code, pattern in patterns.items() if re.fullmatch(pattern, str(sqs_status))]
        if sqs_status < 400:
            wanted = []
        elif sqs_status == 400:
            wanted = ["400"]
        else:
            wanted = ["500"] if sqs_status < 500 else ["502"]
        assert picked == wanted, sqs_status


def test_the_400_template_knows_the_queue_type_and_answers_500_for_sqs_400s_that_are_ours(synthesized, expected):
    [refused] = [r for r in integration(synthesized)["IntegrationResponses"] if r["StatusCode"] == "400"]
    template = refused["ResponseTemplates"][JSON]
    assert template.startswith(f"#set($fifo = {'true' if expected.fifo else 'false'})##\n")
    assert "#set($context.responseOverride.status = 500)" in template


def test_method_authorization_follows_api_auth(synthesized, answers):
    assert method(synthesized)["AuthorizationType"] == AUTHORIZATION_TYPE[answers["api_auth"]]


def test_stage_is_named_for_the_stage_and_throttles_at_the_rate_and_burst_asked(synthesized, expected):
    stage = synthesized.only("AWS::ApiGateway::Stage")
    assert stage["StageName"] == expected.stage
    [defaults] = stage["MethodSettings"]
    assert (defaults["HttpMethod"], defaults["ResourcePath"]) == ("*", "/*")
    assert_throttled_as_asked(defaults, expected)


def test_stage_is_traced_and_logs_executions_without_bodies(synthesized):
    stage = synthesized.only("AWS::ApiGateway::Stage")
    assert stage["TracingEnabled"] is True
    [defaults] = stage["MethodSettings"]
    assert defaults["LoggingLevel"] == "INFO"
    assert defaults["DataTraceEnabled"] is False


def test_access_logs_are_json_lines_in_their_own_log_group(synthesized, expected):
    assert_json_access_logs(synthesized, expected, synthesized.only("AWS::ApiGateway::Stage")["AccessLogSetting"])


def test_integration_role_may_only_send_to_this_queue(synthesized, expected):
    assert_may_only_send_to_the_queue(synthesized, expected, integration(synthesized)["Credentials"]["Fn::GetAtt"][0])


def test_execution_logs_use_the_account_cloudwatch_role_which_outlives_the_stack(synthesized):
    [(account_id, resource)] = synthesized.resources("AWS::ApiGateway::Account").items()
    role_id = resource["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = synthesized.json["Resources"][role_id]
    [policy] = role["Properties"]["ManagedPolicyArns"]
    assert policy["Fn::Join"][1][-1] == ":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    assert role["DeletionPolicy"] == resource["DeletionPolicy"] == "Retain"
    [stage] = synthesized.resources("AWS::ApiGateway::Stage").values()
    assert account_id in stage["DependsOn"]  # the stage can log only once the account knows the role


def test_messages_url_output_is_the_stage_url_of_the_messages_resource(synthesized):
    stage_id = synthesized.only_id("AWS::ApiGateway::Stage")
    parts = synthesized.json["Outputs"]["MessagesUrl"]["Value"]["Fn::Join"][1]
    assert parts[0] == "https://" and parts[1] == ref(synthesized.only_id("AWS::ApiGateway::RestApi"))
    assert parts[-2:] == [ref(stage_id), "/messages"]


def test_execution_logs_go_to_a_log_group_of_this_stack_made_before_the_stage(synthesized, expected):
    """API Gateway would make `API-Gateway-Execution-Logs_<api-id>/<stage>` itself: no retention, never deleted."""
    api_id = synthesized.only_id("AWS::ApiGateway::RestApi")
    name = {"Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": api_id}, f"/{expected.stage}"]]}
    log_group_id = synthesized.named("AWS::Logs::LogGroup", "LogGroupName", name)
    [stage] = synthesized.resources("AWS::ApiGateway::Stage").values()
    assert log_group_id in stage["DependsOn"]
    assert stage["Properties"]["MethodSettings"][0]["LoggingLevel"] == "INFO"
