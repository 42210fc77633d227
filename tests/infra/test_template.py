"""template.yaml keeps its promises: handlers exist, settings match, least privilege, encryption, logs, auth.

Each rule is a function from a template (a plain dict) to the problems it finds, so that a deliberately
broken copy of the template can show that the rule catches what it is there to catch. No AWS involved."""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cfnlint.api import lint_file

from chatsphere.config import Config
from chatsphere.logic.crypto import PURPOSE, subject_key_context, tenant_hmac_context
from chatsphere.logic.object_keys import interaction_blob_key
from infra import template

Doc = dict[str, Any]

DATA_BUCKET = "DataBucket"
# Crypto-shredding: erasure deletes a subject's key first, and no restore may bring it back.
NO_PITR_TABLES = {"SubjectKeysTable"}
# Statements that reach outside the stack on purpose, each bounded by a parameter and a condition:
# (function, Sid) -> the parameter. Export delivers portability packages to other controllers' buckets.
EXTERNAL_STATEMENTS = {("ExportDeliveryRole", "DeliverToAllowListedControllers"): "PortabilityBucketPattern"}
MIN_PYTHON = 12  # python3.12, the oldest runtime with years of support left
PUBLIC_ACCESS_BLOCKS = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
# The services that encrypt a resource type at rest under a key of the template, by the key's property on it.
ENCRYPTING_SERVICES = {"AWS::DynamoDB::Table": "dynamodb", "AWS::S3::Bucket": "s3", "AWS::SQS::Queue": "sqs"}
# The purposes of the code's own (direct) KMS calls, each named in the call's encryption context.
PURPOSES = frozenset(context(".")[PURPOSE] for context in (subject_key_context, tenant_hmac_context))
PURPOSE_CONDITION = f"kms:EncryptionContext:{PURPOSE}"
# The function that stores interaction texts in the bucket; its objects are interaction_blob_key's, no other.
INTERACTION_WRITER = "IntakeFunction"


# ------------------------------------------------------------------ reading


def of_type(doc: Doc, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["Resources"].items() if v["Type"] == kind}


def functions(doc: Doc) -> dict[str, dict[str, Any]]:
    """Each function's properties with Globals merged in as SAM merges them (variables merge, the rest override)."""
    glob = doc.get("Globals", {}).get("Function", {})
    out = {}
    for logical, spec in of_type(doc, "AWS::Serverless::Function").items():
        own = spec.get("Properties", {})
        variables = {
            **glob.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
        out[logical] = {**glob, **own, "Environment": {"Variables": variables}}
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def referenced(value: Any) -> set[str]:
    """The names an intrinsic points at: Ref X, GetAtt X.y, and ${X} or ${X.y} inside Sub."""
    if isinstance(value, list):
        return set().union(*(referenced(v) for v in value))
    if not isinstance(value, dict):
        return set()
    names: set[str] = set()
    for fn, arg in value.items():
        if fn == "Ref":
            names.add(arg)
        elif fn == "Fn::GetAtt":
            names.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
        elif fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            names |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)} - set(variables)
            names |= referenced(list(variables.values()))
        else:
            names |= referenced(arg)
    return names


def uses_cmk(doc: Doc, value: Any) -> bool:
    return bool(referenced(value) & set(of_type(doc, "AWS::KMS::Key")))


# -------------------------------------------------------------------- rules


def handler_problems(doc: Doc) -> list[str]:
    """<Name>Function runs chatsphere.handlers.<name>.lambda_handler, and that imports."""
    problems = []
    for logical, props in functions(doc).items():
        module, _, attribute = props["Handler"].rpartition(".")
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", logical.removesuffix("Function")).lower()
        if module != f"chatsphere.handlers.{name}":
            problems.append(f"{logical}: handler module {module}, expected chatsphere.handlers.{name}")
        try:
            handler = getattr(importlib.import_module(module), attribute)
        except Exception as exc:  # any import-time failure is the finding
            problems.append(f"{logical}: {props['Handler']} does not import: {type(exc).__name__}: {exc}")
            continue
        if not callable(handler):
            problems.append(f"{logical}: {props['Handler']} is not callable")
    return problems


def environment_problems(doc: Doc) -> list[str]:
    """A function's variables are Config's fields, plus Powertools' own, STAGE, and the two botocore
    reads (declared empty or default so that `sam local invoke --env-vars` may set them). Every required
    field is set; a field with a default may be left unset (DELETION_CHUNK: the local stack's tests set it)."""
    fields = {name.upper(): info for name, info in Config.model_fields.items()}
    problems = []
    for logical, props in functions(doc).items():
        names = set(props["Environment"]["Variables"])
        for name in sorted(names - set(fields) - {"STAGE", "AWS_ENDPOINT_URL", "AWS_ACCOUNT_ID_ENDPOINT_MODE"}):
            if not name.startswith("POWERTOOLS_"):
                problems.append(f"{logical}: {name} is not a field of chatsphere.config.Config")
        for name in sorted(set(fields) - names):
            if fields[name].is_required():
                problems.append(f"{logical}: Config.{name.lower()} (required) is not set")
    return problems


def _inline_policies(doc: Doc) -> Iterator[tuple[str, list[Any]]]:
    """(logical id, policies) of every function (SAM's inline statements) and every role of the template."""
    for logical, props in functions(doc).items():
        yield logical, props.get("Policies", [])
    for logical, role in of_type(doc, "AWS::IAM::Role").items():
        yield logical, [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]


def policy_problems(doc: Doc) -> list[str]:
    """Every Allow names its actions and the template's own resources; nothing by wildcard or exclusion."""
    own = set(doc["Resources"])
    problems = [f"{name}: an external Role cannot be checked here" for name, p in functions(doc).items() if "Role" in p]
    for logical, policies in _inline_policies(doc):
        for number, policy in enumerate(policies):
            if not (isinstance(policy, dict) and "Statement" in policy):
                problems.append(f"{logical}: policy {number} is not an inline statement list: {policy!r}")
                continue
            for statement in policy["Statement"]:
                sid = statement.get("Sid", f"#{number}")
                if statement.get("Effect") == "Allow":  # a Deny only narrows
                    problems += _allow_problems(
                        f"{logical}/{sid}", statement, own, EXTERNAL_STATEMENTS.get((logical, sid))
                    )
    return problems


def _allow_problems(where: str, statement: dict[str, Any], own: set[str], bound: str | None) -> list[str]:
    """One Allow statement's problems; `bound` is the parameter that bounds a deliberate external grant."""
    problems = [f"{where}: {key} grants by exclusion" for key in ("NotAction", "NotResource") if key in statement]
    for action in as_list(statement.get("Action", [])):
        if action == "*" or str(action).endswith(":*"):
            problems.append(f"{where}: action {action!r} is a wildcard")
    for resource in as_list(statement.get("Resource", [])):
        names = referenced(resource)
        if resource == "*":
            problems.append(f"{where}: resource '*'")
        elif names & own:
            continue
        elif bound in names and "Condition" in statement:
            continue  # a deliberate external grant, bounded by its parameter and condition
        else:
            problems.append(f"{where}: resource {resource!r} is none of the template's resources")
    if not statement.get("Resource"):
        problems.append(f"{where}: no Resource")
    return problems


def _kms_statements(doc: Doc) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every Allow that names a kms: action (but reading the ledger's public key)."""
    for logical, policies in _inline_policies(doc):
        for policy in policies:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = [str(a) for a in as_list(statement.get("Action", []))]
                if set(actions) == {"kms:GetPublicKey"} and referenced(statement.get("Resource")) == {
                    "LedgerSigningKey"
                }:
                    continue  # the ledger's public key, which anyone may have: no data key, no secret
                if statement.get("Effect") == "Allow" and any(a.startswith("kms:") for a in actions):
                    yield logical, statement


def _service_host(value: Any) -> str | None:
    """The service of a `!Sub <service>.${AWS::Region}.amazonaws.com`, or None for any other form."""
    text = value.get("Fn::Sub") if isinstance(value, dict) else None
    match = re.fullmatch(r"([a-z0-9-]+)\.\$\{AWS::Region\}\.amazonaws\.com", text) if isinstance(text, str) else None
    return match[1] if match else None


def encrypting_services(doc: Doc) -> set[str]:
    """The services that hold a resource of the template encrypted under one of its CMKs."""
    return {
        service
        for kind, service in ENCRYPTING_SERVICES.items()
        for spec in of_type(doc, kind).values()
        if uses_cmk(doc, spec.get("Properties", {}))
    }


def kms_problems(doc: Doc) -> list[str]:
    """Every kms: grant is bound by one condition: kms:ViaService (the key used only by a service that encrypts
    a resource of the template at rest), or the encryption context's purpose (a direct call of the code's,
    for one of the purposes the code names). An unconditioned grant could unwrap every tenant's secret."""
    services = encrypting_services(doc)
    problems = []
    for logical, statement in _kms_statements(doc):
        where = f"{logical}/{statement.get('Sid', '?')}"
        condition = statement.get("Condition") or {}
        if not condition:
            problems.append(f"{where}: kms grant with no condition (it could unwrap any data key or tenant secret)")
            continue
        if set(condition) != {"StringEquals"} or len(condition["StringEquals"]) != 1:
            problems.append(f"{where}: not exactly one StringEquals condition: {condition!r}")
            continue
        ((key, values),) = condition["StringEquals"].items()
        if key == "kms:ViaService":
            for value in as_list(values):
                service = _service_host(value)
                if service not in services:
                    problems.append(f"{where}: kms:ViaService {value!r} is no service encrypting the template's data")
        elif key == PURPOSE_CONDITION:
            unknown = sorted(set(map(str, as_list(values))) - PURPOSES)
            if unknown:
                problems.append(f"{where}: {key} {unknown} is no purpose the code uses ({sorted(PURPOSES)})")
        else:
            problems.append(f"{where}: condition {key} is neither kms:ViaService nor {PURPOSE_CONDITION}")
    return problems


def direct_kms_grants(doc: Doc) -> dict[str, set[tuple[str, str]]]:
    """Per function or role: the (action, purpose) pairs its policy allows the code to call KMS with directly
    (not through a service). A grant without a condition allows every purpose; kms:ViaService, none."""
    grants: dict[str, set[tuple[str, str]]] = {logical: set() for logical, _ in _inline_policies(doc)}
    for logical, statement in _kms_statements(doc):
        equals = (statement.get("Condition") or {}).get("StringEquals", {})
        if "kms:ViaService" in equals:
            continue
        purposes = set(map(str, as_list(equals[PURPOSE_CONDITION]))) if PURPOSE_CONDITION in equals else PURPOSES
        actions = [str(a) for a in as_list(statement["Action"]) if str(a).startswith("kms:")]
        grants[logical] |= {(action, purpose) for action in actions for purpose in purposes}
    return grants


def authorizer_kms_problems(doc: Doc) -> list[str]:
    """The internet-facing authorizer (every API's TOKEN authorizer) can call KMS directly for no purpose."""
    authorizers = {
        name
        for spec in of_type(doc, "AWS::Serverless::Api").values()
        for authorizer in spec["Properties"].get("Auth", {}).get("Authorizers", {}).values()
        for name in referenced(authorizer.get("FunctionArn"))
    }
    grants = direct_kms_grants(doc)
    return [
        f"{name}: the API's authorizer may call KMS directly: {sorted(grants[name])}"
        for name in sorted(authorizers)
        if grants.get(name)
    ]


def interaction_objects_problems(doc: Doc) -> list[str]:
    """The interaction writer's S3 grants name only interaction texts (no export package, no other prefix)."""
    pattern = {"Fn::Sub": "${" + DATA_BUCKET + ".Arn}/" + interaction_blob_key("*", "*", "*")}
    problems = []
    for logical, policies in _inline_policies(doc):
        if logical != INTERACTION_WRITER:
            continue
        for policy in policies:
            for statement in policy.get("Statement", []):
                if not any(str(a).startswith("s3:") for a in as_list(statement.get("Action", []))):
                    continue
                for resource in as_list(statement.get("Resource", [])):
                    if resource != pattern:
                        problems.append(f"{logical}/{statement.get('Sid')}: S3 resource {resource!r}, not {pattern}")
    return problems


def dead_letter_queues(doc: Doc) -> set[str]:
    """Every queue the template sends failures to: redrive targets, and every DeadLetterConfig (schedules) or
    DeadLetterQueue (a function's asynchronous invocations)."""
    found: set[str] = set()
    for spec in of_type(doc, "AWS::SQS::Queue").values():
        found |= referenced(spec.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn"))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("DeadLetterConfig", "DeadLetterQueue"):
                    found.update(referenced(value))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in doc["Resources"].items() if v["Type"] != "AWS::SQS::Queue"})
    return found & set(of_type(doc, "AWS::SQS::Queue"))


def dead_letter_alarm_problems(doc: Doc) -> list[str]:
    """Every dead-letter queue has an alarm on its visible messages, with an action."""
    watched = set()
    for spec in of_type(doc, "AWS::CloudWatch::Alarm").values():
        props = spec["Properties"]
        if (props.get("Namespace"), props.get("MetricName")) != ("AWS/SQS", "ApproximateNumberOfMessagesVisible"):
            continue
        if not props.get("AlarmActions"):
            continue
        for dimension in props.get("Dimensions", []):
            value = dimension.get("Value")
            if dimension.get("Name") == "QueueName" and isinstance(value, dict) and "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                queue, attribute = target if isinstance(target, list) else target.split(".", 1)
                if attribute == "QueueName":
                    watched.add(queue)
    return [f"{queue}: a dead-letter queue with no alarm" for queue in sorted(dead_letter_queues(doc) - watched)]


# The ledger's tables keep their items: a leaf or a subtree hash gone would break every proof through it (the bucket's
# Object Lock bounds how long the evidence is kept); an outbox item leaves when it is appended, never by expiry.
NO_TTL_TABLES = frozenset({"LedgerTable", "OutboxTable"})


def table_problems(doc: Doc) -> list[str]:
    tables = of_type(doc, "AWS::DynamoDB::Table")
    problems = [f"{name}: no such table (named as an exception)" for name in sorted(NO_PITR_TABLES - set(tables))]
    for logical, spec in tables.items():
        props = spec.get("Properties", {})
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            problems.append(f"{logical}: BillingMode is {props.get('BillingMode')!r}, not PAY_PER_REQUEST")
        sse = props.get("SSESpecification", {})
        cmk = uses_cmk(doc, sse.get("KMSMasterKeyId"))
        if not (sse.get("SSEEnabled") is True and sse.get("SSEType") == "KMS" and cmk):
            problems.append(f"{logical}: not SSE-KMS with the template's CMK")
        ttl = props.get("TimeToLiveSpecification", {})
        if logical not in NO_TTL_TABLES and (ttl.get("Enabled") is not True or not ttl.get("AttributeName")):
            problems.append(f"{logical}: TTL not enabled")
        pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
        wanted = logical not in NO_PITR_TABLES
        if pitr is not wanted:
            why = "" if wanted else " (crypto-shredding: a restore would revive erased keys)"
            problems.append(f"{logical}: PointInTimeRecoveryEnabled is {pitr!r}, must be {wanted}{why}")
        first = (props.get("KeySchema") or [{}])[0]
        if first.get("AttributeName") not in ("pk", "id") or first.get("KeyType") != "HASH":
            problems.append(f"{logical}: the first key is {first}, not a HASH key named pk or id")
    return problems


def bucket_problems(doc: Doc, logical: str, *, kms: bool) -> list[str]:
    spec = doc["Resources"].get(logical)
    if spec is None or spec["Type"] != "AWS::S3::Bucket":
        return [f"{logical}: no such bucket"]
    props = spec.get("Properties", {})
    problems = []
    if props.get("VersioningConfiguration", {}).get("Status") != "Enabled":
        problems.append(f"{logical}: versioning not enabled")
    defaults = [
        rule.get("ServerSideEncryptionByDefault", {})
        for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    ]
    if not defaults:
        problems.append(f"{logical}: no default encryption")
    if kms and not all(d.get("SSEAlgorithm") == "aws:kms" and uses_cmk(doc, d.get("KMSMasterKeyID")) for d in defaults):
        problems.append(f"{logical}: default encryption is not SSE-KMS with the template's CMK")
    block = props.get("PublicAccessBlockConfiguration", {})
    problems += [f"{logical}: {name} is not true" for name in PUBLIC_ACCESS_BLOCKS if block.get(name) is not True]
    rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
    if not rules or any(rule.get("Status") != "Enabled" for rule in rules):
        problems.append(f"{logical}: lifecycle rules missing or disabled")
    if not any(_denies_plain_http(statement, logical) for statement in _bucket_statements(doc, logical)):
        problems.append(f"{logical}: no bucket policy statement denies requests without TLS")
    return problems


def _bucket_statements(doc: Doc, bucket: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in of_type(doc, "AWS::S3::BucketPolicy").values()
        if referenced(policy["Properties"]["Bucket"]) == {bucket}
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _denies_plain_http(statement: dict[str, Any], bucket: str) -> bool:
    resources = as_list(statement.get("Resource", []))
    covers = {"objects" if "/*" in str(r) else "bucket" for r in resources if referenced(r) == {bucket}}
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and "s3:*" in as_list(statement.get("Action"))
        and covers == {"bucket", "objects"}
        and str(statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    )


def runtime_problems(doc: Doc) -> list[str]:
    problems = []
    for logical, props in functions(doc).items():
        match = re.fullmatch(r"python3\.(\d+)", str(props.get("Runtime")))
        if match is None or int(match[1]) < MIN_PYTHON:
            problems.append(f"{logical}: runtime {props.get('Runtime')!r} is older than python3.{MIN_PYTHON}")
        if props.get("Architectures") != ["arm64"]:
            problems.append(f"{logical}: architectures {props.get('Architectures')!r}, not [arm64]")
        if props.get("Tracing") != "Active":
            problems.append(f"{logical}: tracing {props.get('Tracing')!r}, not Active")
    return problems


def log_problems(doc: Doc) -> list[str]:
    """Every function writes to a log group of the template, and every log group expires and is KMS-encrypted."""
    groups = of_type(doc, "AWS::Logs::LogGroup")
    problems = []
    for logical, props in functions(doc).items():
        if not referenced(props.get("LoggingConfig", {}).get("LogGroup")) & set(groups):
            problems.append(f"{logical}: LoggingConfig.LogGroup is not a log group of the template")
    for logical, spec in groups.items():
        props = spec.get("Properties", {})
        if "RetentionInDays" not in props:
            problems.append(f"{logical}: no RetentionInDays (logs would be kept forever)")
        if not uses_cmk(doc, props.get("KmsKeyId")):
            problems.append(f"{logical}: not encrypted with the template's CMK")
    return problems


def api_problems(doc: Doc) -> list[str]:
    """One REST API whose default authorizer is a TOKEN function, and every route on it, none opting out."""
    apis = of_type(doc, "AWS::Serverless::Api")
    problems = [] if apis else ["no AWS::Serverless::Api"]
    lambdas = set(of_type(doc, "AWS::Serverless::Function"))
    for logical, spec in apis.items():
        auth = spec["Properties"].get("Auth", {})
        authorizer = auth.get("Authorizers", {}).get(auth.get("DefaultAuthorizer"))
        if authorizer is None:
            problems.append(f"{logical}: no default authorizer")
            continue
        if authorizer.get("FunctionPayloadType") != "TOKEN":
            problems.append(f"{logical}: the default authorizer is not a TOKEN authorizer")
        if not referenced(authorizer.get("FunctionArn")) & lambdas:
            problems.append(f"{logical}: the default authorizer is not a function of the template")
        if authorizer.get("Identity", {}).get("Header") != "Authorization":
            problems.append(f"{logical}: the default authorizer does not read the Authorization header")
    return problems + _route_problems(doc, set(apis))


def _route_problems(doc: Doc, apis: set[str]) -> list[str]:
    """Every function's routes are on one of `apis`, behind its authorizer; no function URL goes around it."""
    problems = []
    for logical, props in functions(doc).items():
        if "FunctionUrlConfig" in props:
            problems.append(f"{logical}: a function URL bypasses the API's authorizer")
        for name, event in props.get("Events", {}).items():
            if event["Type"] == "HttpApi":
                problems.append(f"{logical}/{name}: an HTTP API route has no TOKEN authorizer")
            if event["Type"] != "Api":
                continue
            if not referenced(event["Properties"].get("RestApiId")) & apis:
                problems.append(f"{logical}/{name}: not on the template's API (SAM would make one without auth)")
            if event["Properties"].get("Auth", {}).get("Authorizer") == "NONE":
                problems.append(f"{logical}/{name}: opts out of the authorizer")
    return problems


# -------------------------------------------------------------------- tests


def test_every_function_has_an_importable_handler_named_after_it() -> None:
    assert handler_problems(template.load()) == []


def test_the_export_workers_last_attempt_is_the_queues_last_delivery() -> None:
    # The worker marks a request failed on its last attempt; one attempt more or less than SQS makes
    # would leave a request open forever or fail it while a delivery is still to come.
    from chatsphere.logic.export import MAX_ATTEMPTS

    queue = template.resources("AWS::SQS::Queue")["ExportQueue"]
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == MAX_ATTEMPTS


def test_the_deletion_workers_last_attempt_is_the_queues_last_delivery() -> None:
    from chatsphere.logic.deletion import MAX_ATTEMPTS

    queue = template.resources("AWS::SQS::Queue")["DeletionQueue"]
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == MAX_ATTEMPTS


def test_deliveries_can_reach_no_bucket_of_the_stack() -> None:
    # Issue 7.1: a tenant named the stack's data bucket as its destination and wrote into another tenant's folder.
    doc = template.load()
    buckets = set(template.resources("AWS::S3::Bucket"))
    role = doc["Resources"]["ExportDeliveryRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    denied = {
        name
        for s in statements
        if s["Effect"] == "Deny" and "s3:PutObject" in as_list(s["Action"])
        for r in as_list(s["Resource"])
        for name in referenced(r)
    }
    assert buckets <= denied, f"the delivery role may write into {sorted(buckets - denied)}"
    # and the export function itself writes nowhere but its own packages; deliveries go through the role
    export = doc["Resources"]["ExportFunction"]["Properties"]["Policies"][0]["Statement"]
    writes = [s for s in export if any(str(a).startswith("s3:Put") for a in as_list(s["Action"]))]
    assert [referenced(r) for s in writes for r in as_list(s["Resource"])] == [{"DataBucket"}]
    assumes = [s for s in export if "sts:AssumeRole" in as_list(s["Action"])]
    assert [s["Resource"] for s in assumes] == [{"Fn::GetAtt": ["ExportDeliveryRole", "Arn"]}]


def test_functions_get_exactly_the_settings_fields_and_powertools() -> None:
    assert environment_problems(template.load()) == []


@pytest.mark.parametrize("job", ["export", "deletion", "offboarding"])
def test_a_jobs_retry_after_is_a_template_parameter_whose_default_is_configs(job: str) -> None:
    # Given the template's parameter for the job type, and the variable every function reads it from
    doc = template.load()
    parameter = f"{job.capitalize()}RetryAfterSeconds"
    variables = doc["Globals"]["Function"]["Environment"]["Variables"]
    # Then the variable is the parameter, the parameter's default is Config's, and the local stack sets it to 1
    assert variables[f"RETRY_AFTER_{job.upper()}"] == {"Ref": parameter}
    assert doc["Parameters"][parameter]["Default"] == Config.model_fields[f"retry_after_{job}"].default
    from infra.provision import LOCAL_PARAMETERS

    assert LOCAL_PARAMETERS[parameter] == "1"


def test_every_policy_statement_is_scoped_to_the_templates_resources() -> None:
    assert policy_problems(template.load()) == []


def test_every_kms_grant_is_bound_to_a_service_or_to_a_purpose_of_the_code() -> None:
    # Issue 14.10: every role, the authorizer included, had kms:Decrypt on the data key with no condition.
    assert kms_problems(template.load()) == []


def test_the_authorizer_cannot_unwrap_a_data_key_or_a_tenant_secret() -> None:
    assert authorizer_kms_problems(template.load()) == []


def test_the_interaction_writer_reaches_only_interaction_texts_in_the_bucket() -> None:
    # Issue 14.10: Intake could read and write tenants/*, every tenant's plaintext export packages included.
    assert interaction_objects_problems(template.load()) == []


def test_every_dead_letter_queue_has_an_alarm() -> None:
    # Issue 14.10: MonitorScheduleDeadLetterQueue had none.
    assert dead_letter_alarm_problems(template.load()) == []


def test_tables_are_on_demand_encrypted_expiring_and_recoverable_except_the_keys() -> None:
    assert table_problems(template.load()) == []


def test_the_data_bucket_is_private_versioned_kms_encrypted_tls_only_and_expiring() -> None:
    assert bucket_problems(template.load(), DATA_BUCKET, kms=True) == []


def test_every_other_bucket_is_private_versioned_tls_only_and_expiring() -> None:
    doc = template.load()
    others = sorted(set(of_type(doc, "AWS::S3::Bucket")) - {DATA_BUCKET})
    assert [p for bucket in others for p in bucket_problems(doc, bucket, kms=False)] == []


def test_functions_run_a_current_python_on_arm64_with_tracing() -> None:
    assert runtime_problems(template.load()) == []


def test_every_function_logs_to_an_expiring_encrypted_log_group() -> None:
    assert log_problems(template.load()) == []


def test_every_route_is_behind_the_token_authorizer() -> None:
    assert api_problems(template.load()) == []


def test_cfn_lint_finds_nothing() -> None:
    matches = lint_file(template.TEMPLATE)
    assert [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches] == []


# ------------------------------------------------- the rules catch breakage


def _statement(doc: Doc, function: str, sid: str) -> dict[str, Any]:
    statements = doc["Resources"][function]["Properties"]["Policies"][0]["Statement"]
    return next(s for s in statements if s.get("Sid") == sid)


def _resource_star(doc: Doc) -> None:
    _statement(doc, "IntakeFunction", "SubjectKeys")["Resource"] = "*"


def _service_wildcard(doc: Doc) -> None:
    _statement(doc, "IntakeFunction", "SubjectKeys")["Action"] = ["dynamodb:GetItem", "dynamodb:*"]


def _foreign_bucket(doc: Doc) -> None:
    _statement(doc, "IntakeFunction", "LargeInteractionText")["Resource"] = "arn:aws:s3:::someone-elses-bucket/*"


def _unconditioned_external_grant(doc: Doc) -> None:
    (policy,) = doc["Resources"]["ExportDeliveryRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    del next(s for s in statements if s.get("Sid") == "DeliverToAllowListedControllers")["Condition"]


def _restorable_keys(doc: Doc) -> None:
    doc["Resources"]["SubjectKeysTable"]["Properties"]["PointInTimeRecoverySpecification"] = {
        "PointInTimeRecoveryEnabled": True
    }


def _provisioned_table(doc: Doc) -> None:
    doc["Resources"]["IdempotencyTable"]["Properties"]["BillingMode"] = "PROVISIONED"


def _aws_owned_key(doc: Doc) -> None:
    del doc["Resources"]["TenantsTable"]["Properties"]["SSESpecification"]["KMSMasterKeyId"]


def _plain_http_allowed(doc: Doc) -> None:
    statements = doc["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s.get("Sid") != "DenyInsecureTransport"]


def _public_policy_allowed(doc: Doc) -> None:
    doc["Resources"][DATA_BUCKET]["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] = False


def _unknown_variable(doc: Doc) -> None:
    doc["Resources"]["IntakeFunction"]["Properties"]["Environment"] = {"Variables": {"LEGACY_TABLE": "x"}}


def _missing_variable(doc: Doc) -> None:
    del doc["Globals"]["Function"]["Environment"]["Variables"]["DATA_BUCKET"]


def _open_route(doc: Doc) -> None:
    doc["Resources"]["IntakeFunction"]["Properties"]["Events"]["GetSubject"]["Properties"]["Auth"] = {
        "Authorizer": "NONE"
    }


def _implicit_api(doc: Doc) -> None:
    del doc["Resources"]["IntakeFunction"]["Properties"]["Events"]["GetSubject"]["Properties"]["RestApiId"]


def _old_runtime(doc: Doc) -> None:
    doc["Resources"]["IntakeFunction"]["Properties"]["Runtime"] = "python3.11"


def _unencrypted_logs(doc: Doc) -> None:
    del doc["Resources"]["IntakeLogGroup"]["Properties"]["KmsKeyId"]


def _missing_handler(doc: Doc) -> None:
    doc["Resources"]["IntakeFunction"]["Properties"]["Handler"] = "chatsphere.handlers.intake.no_such_handler"


def _unconditioned_kms(doc: Doc) -> None:
    del _statement(doc, "AuthorizerFunction", "TableEncryption")["Condition"]


def _kms_via_an_unused_service(doc: Doc) -> None:
    _statement(doc, "AnalyticsFunction", "StoreEncryption")["Condition"]["StringEquals"]["kms:ViaService"] = {
        "Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"
    }


def _unknown_purpose(doc: Doc) -> None:
    _statement(doc, "IntakeFunction", "SubjectDataKeys")["Condition"]["StringEquals"][PURPOSE_CONDITION] = "anything"


def _authorizer_unwraps_secrets(doc: Doc) -> None:
    statements = doc["Resources"]["AuthorizerFunction"]["Properties"]["Policies"][0]["Statement"]
    statements.append(copy.deepcopy(_statement(doc, "IntakeFunction", "UnwrapTenantSecret")))


def _intake_reads_packages(doc: Doc) -> None:
    _statement(doc, "IntakeFunction", "LargeInteractionText")["Resource"] = _statement(
        doc, "RightsFunction", "SignDownloadLinks"
    )["Resource"]


def _dead_letters_unwatched(doc: Doc) -> None:
    del doc["Resources"]["MonitorScheduleDeadLettersAlarm"]


def _async_dead_letters_unwatched(doc: Doc) -> None:
    doc["Resources"]["AnalyticsFunction"]["Properties"]["DeadLetterQueue"] = {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["ExportQueue", "Arn"]},
    }


Rule = Callable[[Doc], list[str]]


def _data_bucket(doc: Doc) -> list[str]:
    return bucket_problems(doc, DATA_BUCKET, kms=True)


@pytest.mark.parametrize(
    ("rule", "breakage", "expected"),
    [
        pytest.param(policy_problems, _resource_star, "IntakeFunction/SubjectKeys: resource '*'", id="resource-star"),
        pytest.param(policy_problems, _service_wildcard, "action 'dynamodb:*' is a wildcard", id="action-wildcard"),
        pytest.param(policy_problems, _foreign_bucket, "is none of the template's resources", id="foreign-resource"),
        pytest.param(
            policy_problems,
            _unconditioned_external_grant,
            "ExportDeliveryRole/DeliverToAllowListedControllers: resource",
            id="external-grant-without-condition",
        ),
        pytest.param(table_problems, _restorable_keys, "SubjectKeysTable: PointInTimeRecoveryEnabled", id="keys-pitr"),
        pytest.param(table_problems, _provisioned_table, "IdempotencyTable: BillingMode", id="provisioned"),
        pytest.param(table_problems, _aws_owned_key, "TenantsTable: not SSE-KMS", id="table-not-cmk"),
        pytest.param(_data_bucket, _plain_http_allowed, "denies requests without TLS", id="bucket-plain-http"),
        pytest.param(_data_bucket, _public_policy_allowed, "BlockPublicPolicy is not true", id="bucket-public"),
        pytest.param(environment_problems, _unknown_variable, "LEGACY_TABLE is not a field", id="env-extra"),
        pytest.param(environment_problems, _missing_variable, "Config.data_bucket (required)", id="env-missing"),
        pytest.param(api_problems, _open_route, "IntakeFunction/GetSubject: opts out", id="route-without-auth"),
        pytest.param(api_problems, _implicit_api, "GetSubject: not on the template's API", id="implicit-api"),
        pytest.param(runtime_problems, _old_runtime, "IntakeFunction: runtime 'python3.11'", id="old-runtime"),
        pytest.param(log_problems, _unencrypted_logs, "IntakeLogGroup: not encrypted", id="logs-unencrypted"),
        pytest.param(handler_problems, _missing_handler, "intake.no_such_handler does not import", id="handler"),
        pytest.param(kms_problems, _unconditioned_kms, "TableEncryption: kms grant with no condition", id="kms-open"),
        pytest.param(kms_problems, _kms_via_an_unused_service, "secretsmanager", id="kms-via-unused-service"),
        pytest.param(kms_problems, _unknown_purpose, "['anything'] is no purpose", id="kms-unknown-purpose"),
        pytest.param(authorizer_kms_problems, _unconditioned_kms, "AuthorizerFunction: the API's", id="authz-open"),
        pytest.param(authorizer_kms_problems, _authorizer_unwraps_secrets, "identifier-hmac", id="authz-secret"),
        pytest.param(interaction_objects_problems, _intake_reads_packages, "exports/*", id="intake-packages"),
        pytest.param(
            dead_letter_alarm_problems,
            _dead_letters_unwatched,
            "MonitorScheduleDeadLetterQueue: a dead-letter queue with no alarm",
            id="schedule-dlq-alarm",
        ),
        pytest.param(
            dead_letter_alarm_problems,
            _async_dead_letters_unwatched,
            "ExportQueue: a dead-letter queue with no alarm",
            id="function-dlq-alarm",
        ),
    ],
)
def test_a_broken_copy_of_the_template_is_caught(rule: Rule, breakage: Callable[[Doc], None], expected: str) -> None:
    broken = copy.deepcopy(template.load())
    breakage(broken)
    problems = rule(broken)
    assert any(expected in problem for problem in problems), problems
    assert not any(expected in problem for problem in rule(template.load()))  # the breakage made it, not the file


def subject_index_queries(doc: Doc, function: str) -> list[dict[str, Any]]:
    """The statements of a function that grant a Query of SubjectsTable's indexes."""
    found = []
    for policy in functions(doc)[function].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            indexes = [r for r in as_list(statement.get("Resource")) if "SubjectsTable.Arn}/index/" in str(r)]
            if indexes and "dynamodb:Query" in as_list(statement.get("Action")):
                found.append(statement)
    return found


def test_the_rights_function_counts_subjects_and_interactions_and_reads_none() -> None:
    """The record of processing's counts: Queries of MemberIndex and DayIndex that return a count, never an item."""
    statements = subject_index_queries(template.load(), "RightsFunction")
    assert [s["Condition"] for s in statements] == [{"StringEquals": {"dynamodb:Select": "COUNT"}}]
    subs = [r["Fn::Sub"] if isinstance(r, dict) else r for r in as_list(statements[0]["Resource"])]
    assert {str(r).rsplit("/", 1)[-1] for r in subs} == {"MemberIndex", "DayIndex"}
