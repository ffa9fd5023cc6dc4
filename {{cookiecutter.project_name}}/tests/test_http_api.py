"""HTTP API: POST /messages -> SQS-SendMessage with the whole body, throttled, logged, authorized as asked."""

from __future__ import annotations

from conftest import (
    AUTHORIZATION_TYPE,
    assert_json_access_logs,
    assert_may_only_send_to_the_queue,
    assert_throttled_as_asked,
)


def test_api_carries_the_design_name(synthesized, expected):
    assert synthesized.only("AWS::ApiGatewayV2::Api")["Name"] == expected.api_name


def test_post_messages_is_the_only_route_and_it_sends_to_sqs(synthesized):
    route = synthesized.only("AWS::ApiGatewayV2::Route")
    assert route["RouteKey"] == "POST /messages"
    integration = synthesized.only("AWS::ApiGatewayV2::Integration")
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["IntegrationSubtype"] == "SQS-SendMessage"
    assert synthesized.resources("AWS::Lambda::Permission") == {}  # no Lambda in the request path


def test_the_whole_request_body_becomes_the_message_body(synthesized, expected):
    parameters = synthesized.only("AWS::ApiGatewayV2::Integration")["RequestParameters"]
    assert parameters["QueueUrl"] == {"Ref": synthesized.queue_id(expected.queue_name)}
    assert parameters["MessageBody"] == "$request.body"


def test_fifo_messages_take_their_group_from_a_header_and_dedup_from_the_request_id(synthesized, expected):
    parameters = synthesized.only("AWS::ApiGatewayV2::Integration")["RequestParameters"]
    fifo_parameters = {k: v for k, v in parameters.items() if k in ("MessageGroupId", "MessageDeduplicationId")}
    wanted = {"MessageGroupId": "$request.header.x-message-group-id", "MessageDeduplicationId": "$context.requestId"}
    assert fifo_parameters == (wanted if expected.fifo else {})


def test_route_authorization_follows_api_auth(synthesized, answers):
    route = synthesized.only("AWS::ApiGatewayV2::Route")
    assert route["AuthorizationType"] == AUTHORIZATION_TYPE[answers["api_auth"]]


def test_stage_throttles_at_the_rate_and_burst_asked(synthesized, expected):
    stage = synthesized.only("AWS::ApiGatewayV2::Stage")
    assert stage["AutoDeploy"] is True
    assert_throttled_as_asked(stage["DefaultRouteSettings"], expected)


def test_access_logs_are_json_lines_in_their_own_log_group(synthesized, expected):
    assert_json_access_logs(synthesized, expected, synthesized.only("AWS::ApiGatewayV2::Stage")["AccessLogSettings"])


def test_integration_role_may_only_send_to_this_queue(synthesized, expected):
    integration = synthesized.only("AWS::ApiGatewayV2::Integration")
    assert_may_only_send_to_the_queue(synthesized, expected, integration["CredentialsArn"]["Fn::GetAtt"][0])
