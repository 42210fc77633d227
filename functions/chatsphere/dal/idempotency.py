"""The Powertools idempotency persistence layer over IdempotencyTable, on the shared lazy client."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from chatsphere.dal.clients import client


@cache
def persistence_layer(table_name: str) -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client("dynamodb"))
