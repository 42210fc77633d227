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
                where = f"{logical}/{sid}"
                if statement.get("Effect") != "Allow":
                    continue  # a Deny only narrows
                for key in ("NotAction", "NotResource"):
                    if key in statement:
                        problems.append(f"{where}: {key} grants by exclusion")
                for action in as_list(statement.get("Action", [])):
                    if action == "*" or str(action).endswith(":*"):
                        problems.append(f"{where}: action {action!r} is a wildcard")
                bound = EXTERNAL_STATEMENTS.get((logical, sid))
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
        if ttl.get("Enabled") is not True or not ttl.get("AttributeName"):
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
    for logical, props in functions(doc).items():
        if "FunctionUrlConfig" in props:
            problems.append(f"{logical}: a function URL bypasses the API's authorizer")
        for name, event in props.get("Events", {}).items():
            if event["Type"] == "HttpApi":
                problems.append(f"{logical}/{name}: an HTTP API route has no TOKEN authorizer")
            if event["Type"] != "Api":
                continue
            if not referenced(event["Properties"].get("RestApiId")) & set(apis):
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


def test_every_policy_statement_is_scoped_to_the_templates_resources() -> None:
    assert policy_problems(template.load()) == []


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
    ],
)
def test_a_broken_copy_of_the_template_is_caught(rule: Rule, breakage: Callable[[Doc], None], expected: str) -> None:
    broken = copy.deepcopy(template.load())
    breakage(broken)
    problems = rule(broken)
    assert any(expected in problem for problem in problems), problems
    assert not any(expected in problem for problem in rule(template.load()))  # the breakage made it, not the file
