"""The start-up a typical Python team would ship for one of these functions.

Module scope does what a Powertools-based handler does at init: Logger, Metrics,
idempotency on DynamoDB, an SQS batch processor, and boto3 clients for DynamoDB,
SQS and SNS. The handler answers an HTTP API health check or an SQS batch, so the
first invocation does the same I/O-free work as the Rust functions.
"""

import json
import os

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

logger = Logger(service="dishpatch-peer")
metrics = Metrics(namespace="dishpatch", service="dishpatch-peer")
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
idempotency_config = IdempotencyConfig(event_key_jmespath="messageId")
processor = BatchProcessor(event_type=EventType.SQS)

dynamodb = boto3.client("dynamodb")
sqs = boto3.client("sqs")
sns = boto3.client("sns")


@idempotent_function(
    data_keyword_argument="record",
    persistence_store=persistence,
    config=idempotency_config,
)
def handle_message(record: dict) -> dict:
    return {"messageId": record["messageId"]}


def record_handler(record):
    return handle_message(record=record.raw_event)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    if "Records" in event:
        return process_partial_response(
            event=event,
            record_handler=record_handler,
            processor=processor,
            context=context,
        )
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"status": "ok"}),
    }
