"""Creates template.yaml's stateful resources in an AWS endpoint (moto in-process or moto server).

Tables, keys and buckets are created from the template's own properties, so the test and local
schemas cannot drift from the deployed one. Every property of a provisioned resource is either applied
here (APPLIED) or named, with the reason, as one the local stack does without (DEPLOYED_ONLY): a property
the template gains that is neither fails provisioning, rather than being silently left out.

Why by hand and not moto's CloudFormation (after AWS's SAM transform): docs/architecture.md, "One local
stack"; tests/infra/test_provision.py shows each gap, so that a moto upgrade that closes them is noticed."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session

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


# What each creator applies, and what it leaves to the deployed stack (and why).
APPLIED: dict[str, frozenset[str]] = {
    "AWS::KMS::Key": frozenset({"Description", "EnableKeyRotation", "KeySpec", "KeyUsage"}),
    "AWS::KMS::Alias": frozenset({"AliasName", "TargetKeyId"}),
    "AWS::DynamoDB::Table": frozenset(
        {
            "AttributeDefinitions",
            "KeySchema",
            "BillingMode",
            "GlobalSecondaryIndexes",
            "SSESpecification",
            "StreamSpecification",
            "TimeToLiveSpecification",
            "PointInTimeRecoverySpecification",
            "DeletionProtectionEnabled",
        }
    ),
    "AWS::S3::Bucket": frozenset(
        {
            "VersioningConfiguration",
            "BucketEncryption",
            "PublicAccessBlockConfiguration",
            "OwnershipControls",
            "LifecycleConfiguration",
            "ObjectLockEnabled",
            "ObjectLockConfiguration",
        }
    ),
    "AWS::S3::BucketPolicy": frozenset({"Bucket", "PolicyDocument"}),
    "AWS::SQS::Queue": frozenset(
        {"VisibilityTimeout", "MessageRetentionPeriod", "KmsMasterKeyId", "SqsManagedSseEnabled", "RedrivePolicy"}
    ),
    "AWS::Events::EventBus": frozenset({"Name"}),
    "AWS::IAM::Role": frozenset(),
}
_IAM = "moto checks no IAM policy (it grants any assumption): tests/infra checks the template's"
DEPLOYED_ONLY: dict[str, dict[str, str]] = {
    "AWS::KMS::Key": {
        # moto applies a key policy's Deny statements whatever their principal or condition.
        "KeyPolicy": "moto would deny by statements it cannot evaluate; tests/infra checks the template's",
        "PendingWindowInDays": "no key is scheduled for deletion locally",
    },
    "AWS::S3::Bucket": {"LoggingConfiguration": "moto delivers no server access logs"},
    "AWS::IAM::Role": {
        "AssumeRolePolicyDocument": _IAM,
        "Policies": _IAM,
        "ManagedPolicyArns": _IAM,
    },
}


def unprovisioned(resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each property of a provisioned resource that is neither applied nor named as deployed-only."""
    return [
        f"{logical}.{name} ({spec['Type']})"
        for logical, spec in resources.items()
        if spec["Type"] in APPLIED
        for name in spec.get("Properties", {})
        if name not in APPLIED[spec["Type"]] and name not in DEPLOYED_ONLY.get(spec["Type"], {})
    ]


def _kms_key(aws: Clients, logical: str, props: dict[str, Any], r: Resolver) -> None:
    kms = aws("kms")
    meta = kms.create_key(
        Description=props.get("Description", logical),
        KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
        KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
    )["KeyMetadata"]
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
    if "DeletionProtectionEnabled" in props:
        args["DeletionProtectionEnabled"] = bool(r.resolve(props["DeletionProtectionEnabled"]))
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
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bool(r.resolve(props.get("ObjectLockEnabled", False))))
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
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
        rules = [_lifecycle_rule(logical, rule) for rule in r.resolve(props["LifecycleConfiguration"]["Rules"])]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if "ObjectLockConfiguration" in props:
        lock = r.resolve(props["ObjectLockConfiguration"])
        retention = lock.get("Rule", {}).get("DefaultRetention", {})
        for unit in ("Days", "Years"):  # a parameter resolves to a string; the API takes a number
            if unit in retention:
                retention[unit] = int(retention[unit])
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock)
    r.refs[logical] = name
    r.attrs[(logical, "Arn")] = f"arn:aws:s3:::{name}"


LIFECYCLE_RULE_KEYS = frozenset(
    {
        "Id",
        "Status",
        "Prefix",
        "TagFilters",
        "ExpirationInDays",
        "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
    }
)


def _lifecycle_rule(bucket: str, rule: dict[str, Any]) -> dict[str, Any]:
    """One CloudFormation lifecycle rule in the S3 API's shape (its filter: a prefix, tags, or both)."""
    unknown = sorted(set(rule) - LIFECYCLE_RULE_KEYS)
    if unknown:
        raise ValueError(f"{bucket}: lifecycle rule {rule.get('Id')} has {unknown}, not provisioned locally")
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters", [])]
    prefix = rule.get("Prefix", "")
    if len(tags) == 1 and not prefix:
        rule_filter: dict[str, Any] = {"Tag": tags[0]}
    elif tags:
        rule_filter = {"And": {"Prefix": prefix, "Tags": tags}}
    else:
        rule_filter = {"Prefix": prefix}
    out: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": rule_filter}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return out


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
    if "SqsManagedSseEnabled" in props:
        attributes["SqsManagedSseEnabled"] = str(bool(r.resolve(props["SqsManagedSseEnabled"]))).lower()
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


def _creation_order(kind: str, specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Within a kind, what others point at first (a dead-letter queue before its source queue)."""
    names = [k for k, v in specs.items() if v["Type"] == kind]
    return sorted(names, key=lambda n: "RedrivePolicy" in specs[n].get("Properties", {}))


@cache
def _models() -> botocore.loaders.Loader:
    """One loader of botocore's service models for the process: each test provisions afresh, and a new
    session's loader would read and parse every service's JSON again (half of a provision's time)."""
    return botocore.loaders.create_loader()


def fresh_session() -> boto3.session.Session:
    """A session as new as boto3.session.Session() (credentials, region and endpoint read now), whose
    service models are the process's."""
    core = botocore.session.Session()
    core.register_component("data_loader", _models())
    return boto3.session.Session(botocore_session=core)


# The template's parameters as the local stack sets them (moto only): its jobs finish in under a second, so a 202's
# Retry-After is 1, not the deployed wait.
LOCAL_PARAMETERS = {
    "ExportRetryAfterSeconds": "1",
    "DeletionRetryAfterSeconds": "1",
    "OffboardingRetryAfterSeconds": "1",
}


def provision(
    session: boto3.session.Session | None = None,
    params: dict[str, str] | None = None,
    resources: Mapping[str, Mapping[str, Any]] | None = None,
) -> Resolver:
    """Create every stateful resource of the template (or of `resources`, the template's shape); returns the
    resolver for their names. Raises before creating anything if a property would be left out unnamed."""
    all_resources = template.resources() if resources is None else resources
    missing = unprovisioned(all_resources)
    if missing:
        raise ValueError(
            f"not provisioned locally: {', '.join(missing)}; apply each in infra/provision.py, "
            "or name it in DEPLOYED_ONLY with the reason"
        )
    session = session or fresh_session()
    resolver = Resolver(params={**LOCAL_PARAMETERS, **(params or {})}, region=session.region_name or "us-east-1")
    clients: dict[str, Any] = {}

    def aws(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service)
        return clients[service]

    for kind in ORDER:
        for logical in _creation_order(kind, all_resources):
            CREATORS[kind](aws, logical, dict(all_resources[logical].get("Properties", {})), resolver)
    return resolver


# Declared in the template only so that `sam local invoke --env-vars` may set them; a local runner
# supplies its own (its embedded AWS endpoint), so the template's deployed values are not copied.
RUNNER_SUPPLIED = frozenset({"AWS_ENDPOINT_URL", "AWS_ACCOUNT_ID_ENDPOINT_MODE"})


def function_environment(resolver: Resolver, logical_id: str) -> dict[str, str]:
    """A function's environment as Lambda would see it, names resolved to the provisioned resources."""
    env = template.functions()[logical_id].environment
    return {k: str(resolver.resolve(v)) for k, v in env.items() if k not in RUNNER_SUPPLIED}
