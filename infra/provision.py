"""Creates template.yaml's stateful resources in an AWS endpoint (moto in-process or moto server).

Tables, keys and buckets are created from the template's own properties, so the test and local
schemas cannot drift from the deployed one. Resource types it does not know are listed, not guessed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from infra import template
from infra.template import Resolver

Clients = Callable[[str], Any]  # service name -> a client, one per service for the whole run

# Physical names are the logical ids, lower-cased for S3; one stack per endpoint.
ORDER = [
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
    "AWS::IAM::Role",
]


def _kms_key(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    kms = aws("kms")
    meta = kms.create_key(Description=props.get("Description", logical))["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    r.refs[logical] = meta["KeyId"]
    r.attrs[(logical, "Arn")] = meta["Arn"]


def _kms_alias(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    name = r.resolve(props["AliasName"])
    aws("kms").create_alias(AliasName=name, TargetKeyId=r.resolve(props["TargetKeyId"]))
    r.refs[logical] = name


def _table(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    ddb = aws("dynamodb")
    args: dict[str, Any] = {
        "TableName": logical,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in props:
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    sse = props.get("SSESpecification")
    if sse and sse.get("SSEEnabled"):
        args["SSESpecification"] = {
            "Enabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": r.resolve(sse["KMSMasterKeyId"]),
        }
    if "StreamSpecification" in props:
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    desc = ddb.create_table(**args)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(TableName=logical, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if r.resolve(pitr.get("PointInTimeRecoveryEnabled", False)):
        ddb.update_continuous_backups(
            TableName=logical, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    r.refs[logical] = logical
    r.attrs[(logical, "Arn")] = desc["TableArn"]
    if "LatestStreamArn" in desc:
        r.attrs[(logical, "StreamArn")] = desc["LatestStreamArn"]


def _bucket(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    s3 = aws("s3")
    name = f"chatsphere-local-{logical.lower()}"
    s3.create_bucket(Bucket=name)
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if "BucketEncryption" in props:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": r.resolve(rule["ServerSideEncryptionByDefault"]),
                        "BucketKeyEnabled": rule.get("BucketKeyEnabled", False),
                    }
                    for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
            },
        )
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "LifecycleConfiguration" in props:
        rules = []
        for rule in props["LifecycleConfiguration"]["Rules"]:
            out: dict[str, Any] = {
                "ID": rule["Id"],
                "Status": rule["Status"],
                "Filter": {"Prefix": rule.get("Prefix", "")},
            }
            if "ExpirationInDays" in rule:
                out["Expiration"] = {"Days": rule["ExpirationInDays"]}
            if "NoncurrentVersionExpiration" in rule:
                out["NoncurrentVersionExpiration"] = {
                    "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
                }
            if "AbortIncompleteMultipartUpload" in rule:
                out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
            rules.append(out)
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    r.refs[logical] = name
    r.attrs[(logical, "Arn")] = f"arn:aws:s3:::{name}"


def _bucket_policy(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    # The local endpoint is plain HTTP: a deny-non-TLS statement would deny everything there.
    # tests/infra checks that the deployed policy keeps it.
    document = r.resolve(props["PolicyDocument"])
    document["Statement"] = [s for s in document["Statement"] if "aws:SecureTransport" not in json.dumps(s)]
    aws("s3").put_bucket_policy(Bucket=r.resolve(props["Bucket"]), Policy=json.dumps(document))


def _queue(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    sqs = aws("sqs")
    attributes: dict[str, str] = {}
    for name in ("VisibilityTimeout", "MessageRetentionPeriod", "KmsMasterKeyId"):
        if name in props:
            attributes[name] = str(r.resolve(props[name]))
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(r.resolve(props["RedrivePolicy"]))
    url = sqs.create_queue(QueueName=logical, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    r.refs[logical] = url
    r.attrs[(logical, "Arn")] = arn
    r.attrs[(logical, "QueueName")] = logical
    r.attrs[(logical, "QueueUrl")] = url


def _event_bus(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    name = r.resolve(props["Name"])
    arn = aws("events").create_event_bus(Name=name)["EventBusArn"]
    r.refs[logical] = name
    r.attrs[(logical, "Arn")] = arn
    r.attrs[(logical, "Name")] = name


def _role(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    """The role itself, for what assumes it (moto grants any assumption; IAM is checked by tests/infra)."""
    trust = {"Version": "2012-10-17", "Statement": []}  # the template's names roles SAM makes, absent here
    arn = aws("iam").create_role(RoleName=logical, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    r.refs[logical] = logical
    r.attrs[(logical, "Arn")] = arn


CREATORS: dict[str, Callable[[Clients, str, dict[str, Any], Resolver], None]] = {
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::DynamoDB::Table": _table,
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SQS::Queue": _queue,
    "AWS::Events::EventBus": _event_bus,
    "AWS::IAM::Role": _role,
}


def _creation_order(kind: str, specs: dict[str, dict[str, Any]]) -> list[str]:
    """Within a kind, what others point at first (a dead-letter queue before its source queue)."""
    names = [k for k, v in specs.items() if v["Type"] == kind]
    return sorted(names, key=lambda n: "RedrivePolicy" in specs[n].get("Properties", {}))


def provision(session: boto3.session.Session | None = None, params: dict[str, str] | None = None) -> Resolver:
    """Create every stateful resource of the template; returns the resolver for their names."""
    session = session or boto3.session.Session()
    resolver = Resolver(params=dict(params or {}), region=session.region_name or "us-east-1")
    all_resources = template.resources()
    clients: dict[str, Any] = {}

    def aws(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service)
        return clients[service]

    for kind in ORDER:
        for logical in _creation_order(kind, all_resources):
            CREATORS[kind](aws, logical, all_resources[logical].get("Properties", {}), resolver)
    return resolver


# Declared in the template only so that `sam local invoke --env-vars` may set them; a local runner
# supplies its own (its embedded AWS endpoint), so the template's deployed values are not copied.
RUNNER_SUPPLIED = frozenset({"AWS_ENDPOINT_URL", "AWS_ACCOUNT_ID_ENDPOINT_MODE"})


def function_environment(resolver: Resolver, logical_id: str) -> dict[str, str]:
    """A function's environment as Lambda would see it, names resolved to the provisioned resources."""
    env = template.functions()[logical_id].environment
    return {k: str(resolver.resolve(v)) for k, v in env.items() if k not in RUNNER_SUPPLIED}
