"""WebSocket API: $connect/$disconnect mocks, $default and the named routes -> SQS SendMessage, throttled, logged,
authorized as asked, and a worker that may reply to this API's connections only."""

from __future__ import annotations

import json

import pytest

from {{ cookiecutter.__package_name }}.websocket_api import CONNECTIONS_ENDPOINT_VARIABLE

from conftest import (
    AUTHORIZATION_TYPE,
    ROUTE,
    Synthesized,
    assert_json_access_logs,
    assert_may_only_send_to_the_queue,
    assert_throttled_as_asked,
)
from local.policies import ACCOUNT, REGION, resolve


@pytest.fixture(scope="module")
def routed(with_options: Synthesized) -> Synthesized:
    """The stack with the named route ROUTE (conftest's `with_options`)."""
    return with_options


def routes(synthesized) -> dict[str, dict]:
    return {
        r["Properties"]["RouteKey"]: r["Properties"] for r in synthesized.resources("AWS::ApiGatewayV2::Route").values()
    }


def integration_of(synthesized, route_key: str) -> dict:
    target = resolve(routes(synthesized)[route_key]["Target"])
    logical_id = target.removeprefix("integrations/<Ref ").removesuffix(">")
    return synthesized.json["Resources"][logical_id]["Properties"]


def statements_of(synthesized, role_id: str) -> list[dict]:
    return [{"Action": s["Action"], "Resource": s["Resource"]} for s in synthesized.statements_of(role_id)]


def test_api_is_a_websocket_api_with_the_design_name(synthesized, expected):
    api = synthesized.only("AWS::ApiGatewayV2::Api")
    assert api["Name"] == expected.api_name
    assert api["ProtocolType"] == "WEBSOCKET"


def test_connect_disconnect_default_and_the_named_routes_are_the_only_routes(synthesized):
    assert set(routes(synthesized)) == {"$connect", "$disconnect", "$default"}  # no named route unless added


def test_a_frame_selects_its_route_by_its_action_field(synthesized):
    assert synthesized.only("AWS::ApiGatewayV2::Api")["RouteSelectionExpression"] == "$request.body.action"


def test_each_named_route_is_a_route_of_its_own(routed):
    assert set(routes(routed)) == {"$connect", "$disconnect", "$default", ROUTE}


def test_a_named_route_sends_to_the_queue_through_the_integration_of_default(routed):
    # One integration, so one template and one role: the route key in the message is all that tells them apart.
    assert routes(routed)[ROUTE]["Target"] == routes(routed)["$default"]["Target"]
    assert integration_of(routed, ROUTE)["IntegrationType"] == "AWS"


def test_a_named_route_runs_on_the_authorized_connection_like_default(routed, answers):
    authorization = {key: route["AuthorizationType"] for key, route in routes(routed).items()}
    assert authorization == {
        "$connect": AUTHORIZATION_TYPE[answers["api_auth"]],
        "$disconnect": "NONE",
        "$default": "NONE",
        ROUTE: "NONE",
    }


def test_connect_and_disconnect_are_accepted_by_mock_integrations(synthesized):
    for route_key in ("$connect", "$disconnect"):
        integration = integration_of(synthesized, route_key)
        assert integration["IntegrationType"] == "MOCK"
        assert integration["TemplateSelectionExpression"] == "\\$default"
        assert json.loads(integration["RequestTemplates"]["$default"]) == {"statusCode": 200}
    assert synthesized.resources("AWS::Lambda::Permission") == {}  # no Lambda in the request path


def test_default_route_sends_every_frame_to_this_queue_through_a_template(synthesized, expected):
    integration = integration_of(synthesized, "$default")
    assert integration["IntegrationType"] == "AWS"
    assert integration["IntegrationMethod"] == "POST"
    assert resolve(integration["IntegrationUri"]) == (
        f"arn:aws:apigateway:{REGION}:sqs:path/{ACCOUNT}/<{synthesized.queue_id(expected.queue_name)}.QueueName>"
    )
    assert integration["RequestParameters"] == {
        "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"
    }
    assert integration["TemplateSelectionExpression"] == "\\$default"
    assert list(integration["RequestTemplates"]) == ["$default"]
    assert integration["PassthroughBehavior"] == "NEVER"


def test_request_template_is_told_whether_the_queue_is_fifo(synthesized, expected):
    template = integration_of(synthesized, "$default")["RequestTemplates"]["$default"]
    assert template.splitlines()[0] == f"#set($fifo = {'true' if expected.fifo else 'false'})##"


def test_request_template_puts_the_route_key_in_a_message_attribute(synthesized):
    # What the attribute holds, for $default and a named route, is in test_websocket_contract.py.
    template = integration_of(synthesized, "$default")["RequestTemplates"]["$default"]
    assert "&MessageAttribute.3.Name=routeKey##" in template.splitlines()
    assert "&MessageAttribute.3.Value.StringValue=$util.urlEncode($context.routeKey)##" in template.splitlines()


def test_only_connect_is_authorized_as_api_auth_asks(synthesized, answers):
    authorization = {key: route["AuthorizationType"] for key, route in routes(synthesized).items()}
    wanted = AUTHORIZATION_TYPE[answers["api_auth"]]
    # API Gateway authorizes a WebSocket client on $connect; the other routes run on the authorized connection.
    assert authorization == {"$connect": wanted, "$disconnect": "NONE", "$default": "NONE"}


def test_stage_is_named_for_the_stage_and_throttles_at_the_rate_and_burst_asked(synthesized, expected):
    stage = synthesized.only("AWS::ApiGatewayV2::Stage")
    assert stage["StageName"] == expected.stage
    assert stage["AutoDeploy"] is True
    assert_throttled_as_asked(stage["DefaultRouteSettings"], expected)


def test_access_logs_are_json_lines_in_their_own_log_group(synthesized, expected):
    assert_json_access_logs(synthesized, expected, synthesized.only("AWS::ApiGatewayV2::Stage")["AccessLogSettings"])


def test_integration_role_may_only_send_to_this_queue(synthesized, expected):
    role_id = integration_of(synthesized, "$default")["CredentialsArn"]["Fn::GetAtt"][0]
    assert_may_only_send_to_the_queue(synthesized, expected, role_id)


def test_stage_is_created_after_the_account_logging_role_is_set(synthesized):
    [stage] = synthesized.resources("AWS::ApiGatewayV2::Stage").values()
    [(account_id, account)] = synthesized.resources("AWS::ApiGateway::Account").items()
    assert account_id in stage["DependsOn"]
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = synthesized.json["Resources"][role_id]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
    # The setting serves every REST and WebSocket API of the region: it outlives the stack.
    assert account["DeletionPolicy"] == role["DeletionPolicy"] == "Retain"


def test_worker_may_post_to_the_connections_of_this_stage_only(synthesized, expected):
    api_id = synthesized.only_id("AWS::ApiGatewayV2::Api")
    function = synthesized.only("AWS::Lambda::Function")
    role_id = function["Role"]["Fn::GetAtt"][0]
    manage = [s for s in statements_of(synthesized, role_id) if "execute-api" in json.dumps(s["Action"])]
    assert [(s["Action"], resolve(s["Resource"])) for s in manage] == [
        (
            "execute-api:ManageConnections",
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:<Ref {api_id}>/{expected.stage}/POST/@connections/*",
        )
    ]


def test_worker_is_told_the_connections_endpoint_of_this_stage(synthesized, expected):
    api_id = synthesized.only_id("AWS::ApiGatewayV2::Api")
    function = synthesized.only("AWS::Lambda::Function")
    endpoint = function["Environment"]["Variables"][CONNECTIONS_ENDPOINT_VARIABLE]
    assert resolve(endpoint) == f"https://<Ref {api_id}>.execute-api.{REGION}.amazonaws.com/{expected.stage}"


def test_stack_outputs_the_websocket_url(synthesized, expected):
    api_id = synthesized.only_id("AWS::ApiGatewayV2::Api")
    outputs = synthesized.json["Outputs"]
    url = f"wss://<Ref {api_id}>.execute-api.{REGION}.amazonaws.com/{expected.stage}"
    assert resolve(outputs["WebSocketUrl"]["Value"]) == url
    assert resolve(outputs["MessagesUrl"]["Value"]) == url
