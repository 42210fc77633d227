"""`chatsphere` console command: operator tasks against real AWS or the local stack.

    chatsphere tenants create --name NAME      prints {"tenant_id": ..., "api_key": ...}
    chatsphere reconcile [--dry-run]           after any restore: removes again what the restore brought back
                                               of erased subjects; prints the counts per store as JSON

Names come from flags, else the functions' environment variables (TENANTS_TABLE, DATA_KEY_ID, and for
reconcile REQUESTS_TABLE, SUBJECTS_TABLE, SUBJECT_KEYS_TABLE, IDEMPOTENCY_TABLE, DATA_BUCKET: stack outputs),
else (with --local) from the stack file that `make run` writes along with the endpoint of its embedded AWS
($CHATSPHERE_LOCAL_DIR/stack.json, by default .local/stack.json).

An error of use (a missing name, no local stack, AWS unreachable or refusing) is one line on stderr and a
non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from chatsphere.bootstrap import key_wrapper, reconcile_ports, tenant_store
from chatsphere.logic.tenants import create_tenant

# reconcile's names: (argument, environment variable, the template's logical id in the local stack file)
RECONCILE_NAMES = (
    ("tenants_table", "TENANTS_TABLE", "TenantsTable"),
    ("requests_table", "REQUESTS_TABLE", "RequestsTable"),
    ("subjects_table", "SUBJECTS_TABLE", "SubjectsTable"),
    ("subject_keys_table", "SUBJECT_KEYS_TABLE", "SubjectKeysTable"),
    ("idempotency_table", "IDEMPOTENCY_TABLE", "IdempotencyTable"),
    ("data_bucket", "DATA_BUCKET", "DataBucket"),
    ("key_id", "DATA_KEY_ID", "DataKey"),
)


class UsageError(Exception):
    """Said in one line, exit 2."""


def _local_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local", action="store_true", help="use the running local stack (.local/stack.json)")
    local_dir = Path(os.environ.get("CHATSPHERE_LOCAL_DIR") or ".local")
    parser.add_argument("--stack-file", default=local_dir / "stack.json", type=Path, help="default: %(default)s")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatsphere", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    groups = parser.add_subparsers(dest="group", required=True)
    tenants = groups.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    create = tenants.add_parser("create", help="create a tenant and its first API key")
    create.add_argument("--name", required=True, help="the tenant's display name")
    create.add_argument("--tenants-table", default=os.environ.get("TENANTS_TABLE"))
    create.add_argument("--key-id", default=os.environ.get("DATA_KEY_ID"), help="KMS key id or ARN")
    _local_flags(create)
    reconcile = groups.add_parser(
        "reconcile",
        help="after a restore: remove again what it brought back of erased subjects",
        description="Reapply every tombstone after a restore of SubjectsTable or the data bucket: removes the "
        "erased subjects' profiles, interactions, lookup items, data keys, idempotency records and object "
        "versions that came back, and prints the counts per store (no subject id). Safe to run again.",
    )
    for dest, env, _ in RECONCILE_NAMES:
        reconcile.add_argument(f"--{dest.replace('_', '-')}", dest=dest, default=os.environ.get(env))
    reconcile.add_argument("--dry-run", action="store_true", help="count what would be removed, remove nothing")
    _local_flags(reconcile)
    return parser


def _use_local_stack(stack_file: Path) -> dict[str, str]:
    """Point boto3 at the local stack's AWS; returns the template's physical names (logical id -> name)."""
    try:
        stack = json.loads(stack_file.read_text())
        endpoint, resources = stack["aws_endpoint_url"], stack["resources"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"no local stack: {stack_file} is missing or unreadable (start it with `make run`)") from None
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    for name, value in stack.get("aws_env", {}).items():
        os.environ.setdefault(name, value)
    return dict(resources)


def _tenants_create(args: argparse.Namespace) -> int:
    if args.local:
        resources = _use_local_stack(args.stack_file)
        args.tenants_table = args.tenants_table or resources.get("TenantsTable")
        args.key_id = args.key_id or resources.get("DataKey")
    if not args.tenants_table or not args.key_id:
        raise UsageError("set --tenants-table and --key-id (or TENANTS_TABLE and DATA_KEY_ID)")
    name = args.name.strip()
    if not 1 <= len(name) <= 128:
        raise UsageError("--name must be 1 to 128 characters")
    tenant, api_key = create_tenant(tenant_store(args.tenants_table), key_wrapper(args.key_id), name)
    print(json.dumps({"tenant_id": tenant.tenant_id, "api_key": api_key}))
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from chatsphere.logic.reconcile import reconcile

    if args.local:
        resources = _use_local_stack(args.stack_file)
        for dest, _, logical in RECONCILE_NAMES:
            setattr(args, dest, getattr(args, dest) or resources.get(logical))
    missing = [env for dest, env, _ in RECONCILE_NAMES if not getattr(args, dest)]
    if missing:
        raise UsageError(f"set {', '.join(missing)} (or the matching flags, or --local)")
    names: dict[str, Any] = {dest: getattr(args, dest) for dest, _, _ in RECONCILE_NAMES}
    report = reconcile(reconcile_ports(**names), dry_run=args.dry_run)
    print(json.dumps(report.as_dict(), sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    args = _parser().parse_args(argv)
    command = _reconcile if args.group == "reconcile" else _tenants_create
    try:
        return command(args)
    except UsageError as error:
        print(f"chatsphere: {error}", file=sys.stderr)
        return 2
    except BotoCoreError as error:  # no endpoint, no credentials, no region: said by botocore in one line
        print(f"chatsphere: AWS is not reachable as configured: {error}", file=sys.stderr)
        return 1
    except ClientError as error:
        code, message = (
            error.response.get("Error", {}).get("Code", "?"),
            error.response.get("Error", {}).get("Message", ""),
        )
        print(f"chatsphere: AWS refused {error.operation_name}: {code} {message}".rstrip(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
