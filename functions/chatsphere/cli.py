"""`chatsphere` console command: operator tasks against real AWS or the local stack.

    chatsphere tenants create --name NAME      prints {"tenant_id": ..., "api_key": ...}
    chatsphere tenants list                    prints every tenant's id, name, created_at and status
    chatsphere tenants offboard --tenant ID [--deliver-to URI] [--yes]
                                               returns all the tenant's data, then (asked first, unless --yes)
                                               deletes every copy; prints the record as it ends
    chatsphere tenants receipt --tenant ID     prints an offboarded tenant's receipt (verify it offline with
                                               `chatsphere verify`)
    chatsphere keys create --tenant ID         another API key: prints {"tenant_id", "key_id", "api_key"}
    chatsphere keys list --tenant ID           each key's key_id, created_at and status (never the key)
    chatsphere keys revoke --tenant ID KEY_ID  the key stops working once the authorizer's cached answer
                                               expires (ReauthorizeEvery in template.yaml: 60 s)
    chatsphere reconcile [--dry-run]           after any restore: removes again what the restore brought back
                                               of erased subjects; prints the counts per store as JSON
    chatsphere ledger verify --tenant ID [--public-key KEY.pem]
                                               re-reads the tenant's whole evidence ledger: the tree, every
                                               signed head, consistency, the locked copies; names the first
                                               entry that breaks it (exit 1)
    chatsphere ledger rebuild --tenant ID      the ledger's index (LedgerTable) anew from the locked bucket
    chatsphere retention run [--dry-run] [--as-of ISO_TIME] [--tenant ID]
                                               one retention pass now, in-process (or with --dry-run, what it
                                               would remove); prints the counts per tenant and category as JSON
    chatsphere verify RECEIPT.json --public-key KEY.pem
                                               offline, no AWS: checks a ledger receipt (format, entry, inclusion,
                                               signature) with the ledger's public key alone; prints each check
                                               and what the receipt proves; exit 0 verified, 1 not verified

Names come from flags, else the functions' environment variables (TENANTS_TABLE, DATA_KEY_ID, and for
reconcile REQUESTS_TABLE, SUBJECTS_TABLE, SUBJECT_KEYS_TABLE, IDEMPOTENCY_TABLE, DATA_BUCKET; for retention the
whole environment of the functions: stack outputs), else (with --local) from the stack file that `make run` writes
along with the endpoint of its embedded AWS ($CHATSPHERE_LOCAL_DIR/stack.json, else .local/stack.json in the
repository, found from this package's location or from the working directory upwards).

An error of use (a missing name, no local stack, an unknown tenant or key, AWS unreachable or refusing) is one
line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from chatsphere.bootstrap import Wiring, build
from chatsphere.config import AwsTarget, Config
from chatsphere.errors import DomainError
from chatsphere.logic.tenants import create_api_key, create_tenant, list_api_keys, list_tenants, revoke_api_key

# reconcile's names: (argument, environment variable, the template's logical id in the local stack file); the
# environment variable, in lower case, is the Config field it sets
RECONCILE_NAMES = (
    ("tenants_table", "TENANTS_TABLE", "TenantsTable"),
    ("requests_table", "REQUESTS_TABLE", "RequestsTable"),
    ("subjects_table", "SUBJECTS_TABLE", "SubjectsTable"),
    ("subject_keys_table", "SUBJECT_KEYS_TABLE", "SubjectKeysTable"),
    ("idempotency_table", "IDEMPOTENCY_TABLE", "IdempotencyTable"),
    ("data_bucket", "DATA_BUCKET", "DataBucket"),
    ("key_id", "DATA_KEY_ID", "DataKey"),
    ("ledger_table", "LEDGER_TABLE", "LedgerTable"),  # the erasures the ledger records
    ("outbox_table", "OUTBOX_TABLE", "OutboxTable"),  # the run's own entries
)

# the ledger's names, as reconcile's
LEDGER_NAMES = (
    ("ledger_table", "LEDGER_TABLE", "LedgerTable"),
    ("outbox_table", "OUTBOX_TABLE", "OutboxTable"),
    ("ledger_bucket", "LEDGER_BUCKET", "LedgerBucket"),
    ("ledger_key_id", "LEDGER_KEY_ID", "LedgerSigningKey"),
)

# retention's and offboarding's names: every variable the functions' Config requires (the same adapters as theirs)
FUNCTION_NAMES = tuple(name.upper() for name, field in Config.model_fields.items() if field.is_required())
RETENTION_FUNCTION = "RetentionFunction"  # whose environment --local takes from the stack file


class UsageError(Exception):
    """Said in one line, exit 2."""


def _local_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local", action="store_true", help="use the running local stack (.local/stack.json)")
    parser.add_argument(
        "--stack-file",
        type=Path,
        help="default: $CHATSPHERE_LOCAL_DIR/stack.json, else .local/stack.json in the repository",
    )


def repository_root() -> Path | None:
    """The checkout that holds template.yaml and this package: from the package's own location (an editable
    install, as `make` makes), else from the working directory upwards."""
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "template.yaml").is_file() and (folder / "functions" / "chatsphere").is_dir():
                return folder
    return None


def _stack_file(args: argparse.Namespace) -> Path:
    if args.stack_file is not None:
        return Path(args.stack_file)
    if os.environ.get("CHATSPHERE_LOCAL_DIR"):
        return Path(os.environ["CHATSPHERE_LOCAL_DIR"]) / "stack.json"
    root = repository_root()
    if root is None:
        raise UsageError(
            "no local stack found: run this inside the repository, or set CHATSPHERE_LOCAL_DIR to the directory "
            "`make run` writes its stack.json to"
        )
    return root / ".local" / "stack.json"


def _tenants_table_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants-table", default=os.environ.get("TENANTS_TABLE"), help="default: $TENANTS_TABLE")
    parser.add_argument(
        "--outbox-table",
        default=os.environ.get("OUTBOX_TABLE"),
        help="where a change's evidence-ledger entry goes (default: $OUTBOX_TABLE)",
    )
    _local_flags(parser)


def _function_names(parser: argparse.ArgumentParser) -> None:
    """The flags of a command that runs with the functions' whole configuration."""
    names = parser.add_argument_group("names (default: the environment variable of the same name, else --local)")
    for env in FUNCTION_NAMES:
        names.add_argument(f"--{env.lower().replace('_', '-')}", dest=env, metavar=env)
    _local_flags(parser)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatsphere", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    groups = parser.add_subparsers(dest="group", required=True)
    tenants = groups.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    create = tenants.add_parser("create", help="create a tenant and its first API key")
    create.add_argument("--name", required=True, help="the tenant's display name")
    create.add_argument("--key-id", default=os.environ.get("DATA_KEY_ID"), help="KMS key id or ARN")
    _tenants_table_flags(create)
    _tenants_table_flags(tenants.add_parser("list", help="every tenant: id, name, created_at, status (JSON)"))
    offboard = tenants.add_parser(
        "offboard",
        help="return all of a tenant's data, then delete every copy",
        description="The tenant's offboarding, as POST /v1/offboarding: every subject's package and a manifest "
        "(delivered to --deliver-to, one of the tenant's portability_destinations, or linked from the manifest), "
        "then, once you confirm (or with --yes), every subject erased through the deletion path and everything "
        "else the tenant holds removed; a subject under a legal hold is kept and reported. The jobs run in the "
        "Deletion function (locally: the stack's queue poller); this command waits for each phase.",
    )
    offboard.add_argument("--tenant", metavar="ID", required=True, help="the tenant id")
    offboard.add_argument("--format", choices=("json", "csv"), default="json", help="the packages' format")
    offboard.add_argument("--deliver-to", metavar="URI", help="s3:// destination, one of the tenant's")
    offboard.add_argument("--yes", action="store_true", help="delete without asking, once the data is returned")
    offboard.add_argument("--wait", type=int, default=3600, metavar="SECONDS", help="the longest to wait a phase")
    _function_names(offboard)
    receipt = tenants.add_parser(
        "receipt",
        help="an offboarded tenant's receipt, from the evidence ledger",
        description="The receipt of the tenant's offboarding: its ledger entry, the inclusion proof and the signed "
        "tree head over it. It verifies offline with `chatsphere verify RECEIPT.json --public-key KEY.pem`.",
    )
    receipt.add_argument("--tenant", metavar="ID", required=True, help="the tenant id")
    receipt.add_argument("--output", type=Path, metavar="FILE", help="write it here (default: standard output)")
    for dest, env, _ in LEDGER_NAMES:
        receipt.add_argument(f"--{dest.replace('_', '-')}", dest=dest, default=os.environ.get(env))
    _local_flags(receipt)
    keys = groups.add_parser(
        "keys",
        help="a tenant's API keys: several at once, so that a key can be rotated without downtime",
        description="Rotation: `keys create` a new key, switch the tenant's clients to it, then `keys revoke` the "
        "old one. A revoked key stops working once the authorizer's cached answer expires (60 s).",
    ).add_subparsers(dest="action", required=True)
    for action, text in (
        ("create", "another API key for the tenant: printed once, stored only as a hash"),
        ("list", "the tenant's keys: key_id, created_at, status (never a key)"),
        ("revoke", "revoke one of the tenant's keys, by the key_id `keys list` prints"),
    ):
        command = keys.add_parser(action, help=text, description=text)
        command.add_argument("--tenant", metavar="ID", required=True, help="the tenant id")
        if action == "revoke":
            command.add_argument("key_id", metavar="KEY_ID", help="as `keys list` prints it")
        _tenants_table_flags(command)
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
    retention = groups.add_parser("retention", help="data retention").add_subparsers(dest="action", required=True)
    run = retention.add_parser(
        "run",
        help="one retention pass now, or with --dry-run what it would remove",
        description="One retention pass now, in-process, through every tenant (or --tenant's) as its settings "
        "say: expired interactions, export packages and closed requests are removed; an expired profile becomes "
        "a deletion request on DeletionQueue, which the Deletion function (locally: the stack's queue poller) "
        "carries out. A legal hold keeps what it covers. Prints the run's counts per tenant and category as "
        "JSON (ids and counts only). A tenant whose scheduled run is still going is reported as skipped.",
    )
    run.add_argument("--dry-run", action="store_true", help="count what a pass would remove, write nothing")
    run.add_argument(
        "--as-of", metavar="ISO_TIME", help="ISO time with a timezone, e.g. 2025-01-31T00:00:00Z (default: now)"
    )
    run.add_argument("--tenant", metavar="ID", help="one tenant id (default: every tenant)")
    _function_names(run)
    ledger = groups.add_parser("ledger", help="the evidence ledger").add_subparsers(dest="action", required=True)
    for action, text in (
        (
            "verify",
            "re-read a tenant's whole log: recompute its tree, check every signed head's signature and that each "
            "later head extends the earlier (RFC 9162 consistency), and that the index holds the bytes the locked "
            "bucket does; names the first entry that breaks it. Exit 0 when it holds, 1 when it does not",
        ),
        (
            "rebuild",
            "rebuild a tenant's index (LedgerTable) from the locked bucket alone, after the table was lost or "
            "restored; prints the tree's size",
        ),
    ):
        command = ledger.add_parser(
            action, help=text.split(":")[0].split(";")[0], description=text[0].upper() + text[1:] + "."
        )
        command.add_argument("--tenant", metavar="ID", required=True, help="the tenant id")
        if action == "verify":
            command.add_argument(
                "--public-key", type=Path, metavar="KEY.pem", help="the ledger's public key (default: read from KMS)"
            )
        for dest, env, _ in LEDGER_NAMES:
            command.add_argument(f"--{dest.replace('_', '-')}", dest=dest, default=os.environ.get(env))
        _local_flags(command)
    verify = groups.add_parser(
        "verify",
        help="check a ledger receipt offline, with the ledger's public key alone (no AWS)",
        description="Check a receipt (GET /v1/requests/{id}/receipt) offline: its format, that its entry is the "
        "one it places in the tree, its audit path to the signed root, and the tree head's signature with the "
        "public key given. Prints each check and, when all pass, what the receipt proves. Exit 0 when it "
        "verifies, 1 when it does not, 2 when a file cannot be read or is not JSON.",
    )
    verify.add_argument("receipt", type=Path, metavar="RECEIPT.json", help="the receipt file")
    verify.add_argument(
        "--public-key", type=Path, required=True, metavar="KEY.pem", help="the ledger's public key (PEM, P-256)"
    )
    return parser


def _answers(url: str) -> bool:
    """Whether anything answers HTTP at `url` (any status counts: moto answers / with one)."""
    try:
        with urllib.request.urlopen(url, timeout=3):  # noqa: S310 - the stack file's own http endpoint
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _read_stack(stack_file: Path) -> dict[str, Any]:
    try:
        stack: dict[str, Any] = json.loads(stack_file.read_text())
        if not isinstance(stack["aws_endpoint_url"], str) or not isinstance(stack["resources"], dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"no local stack: {stack_file} is missing or unreadable (start it with `make run`)") from None
    if not _answers(stack["aws_endpoint_url"]):
        raise UsageError(
            f"the local stack of {stack_file} is not running: nothing answers at {stack['aws_endpoint_url']} "
            "(start it with `make run`)"
        )
    return stack


def _local_target(stack: dict[str, Any]) -> AwsTarget:
    """The local stack's embedded AWS, with the dummy credentials and region it was started with."""
    env = stack.get("aws_env", {})
    return AwsTarget(
        endpoint_url=str(stack["aws_endpoint_url"]),
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
    )


def _local_stack(args: argparse.Namespace) -> tuple[AwsTarget, dict[str, str]]:
    """With --local, the local stack's AWS and the template's physical names (logical id -> name); else the
    environment's own AWS and no names."""
    if not args.local:
        return AwsTarget(), {}
    stack = _read_stack(_stack_file(args))
    return _local_target(stack), dict(stack["resources"])


def _tenants_create(args: argparse.Namespace) -> int:
    aws, resources = _local_stack(args)
    tenants_table = args.tenants_table or resources.get("TenantsTable")
    key_id = args.key_id or resources.get("DataKey")
    outbox_table = args.outbox_table or resources.get("OutboxTable")
    if not tenants_table or not key_id or not outbox_table:
        raise UsageError(
            "set --tenants-table, --key-id and --outbox-table (or TENANTS_TABLE, DATA_KEY_ID and OUTBOX_TABLE)"
        )
    name = args.name.strip()
    if not 1 <= len(name) <= 128:
        raise UsageError("--name must be 1 to 128 characters")
    wiring = build(Config.naming(aws, tenants_table=tenants_table, data_key_id=key_id, outbox_table=outbox_table))
    tenant, api_key = create_tenant(wiring.tenants, name)
    print(json.dumps({"tenant_id": tenant.tenant_id, "api_key": api_key}))
    return 0


def _tenants_wiring(args: argparse.Namespace, writes: bool = False) -> Wiring:
    """The tenants' and keys' wiring; one that `writes` (a key's creation or revocation) needs the outbox too."""
    aws, resources = _local_stack(args)
    tenants_table = args.tenants_table or resources.get("TenantsTable")
    outbox_table = args.outbox_table or resources.get("OutboxTable") or ""
    if not tenants_table:
        raise UsageError("set --tenants-table (or TENANTS_TABLE, or --local)")
    if writes and not outbox_table:
        raise UsageError("set --outbox-table (or OUTBOX_TABLE, or --local)")
    return build(Config.naming(aws, tenants_table=tenants_table, outbox_table=outbox_table))


def _tenants_list(args: argparse.Namespace) -> int:
    tenants = list_tenants(_tenants_wiring(args).tenants)
    print(
        json.dumps(
            [
                {"tenant_id": t.tenant_id, "name": t.name, "created_at": t.created_at, "status": t.status}
                for t in tenants
            ]
        )
    )
    return 0


def _keys(args: argparse.Namespace) -> int:
    store = _tenants_wiring(args, writes=args.action != "list").tenants
    if args.action == "create":
        item, api_key = create_api_key(store, args.tenant)
        print(json.dumps({"tenant_id": item.tenant_id, "key_id": item.key_id, "api_key": api_key}))
    elif args.action == "list":
        keys = list_api_keys(store, args.tenant)
        print(
            json.dumps(
                {
                    "tenant_id": args.tenant,
                    "keys": [
                        {"key_id": k.key_id, "created_at": k.created_at, "status": k.status, "revoked_at": k.revoked_at}
                        for k in keys
                    ],
                }
            )
        )
    else:
        key = revoke_api_key(store, args.tenant, args.key_id)
        print(
            json.dumps(
                {"tenant_id": key.tenant_id, "key_id": key.key_id, "status": key.status, "revoked_at": key.revoked_at}
            )
        )
    return 0


def _named_wiring(args: argparse.Namespace, wanted: tuple[tuple[str, str, str], ...]) -> Wiring:
    """A wiring over the resources a command names: each (flag, environment variable, the local stack's logical
    id) from its flag, else the variable, else with --local the stack file; all of them, or a usage error."""
    aws, resources = _local_stack(args)
    names = {env.lower(): getattr(args, dest) or resources.get(logical, "") for dest, env, logical in wanted}
    missing = [env for _, env, _ in wanted if not names[env.lower()]]
    if missing:
        raise UsageError(f"set {', '.join(missing)} (or the matching flags, or --local)")
    return build(Config.naming(aws, **names))


def _reconcile(args: argparse.Namespace) -> int:
    from chatsphere.logic.reconcile import reconcile

    report = reconcile(_named_wiring(args, RECONCILE_NAMES).reconcile, dry_run=args.dry_run)
    print(json.dumps(report.as_dict(), sort_keys=True))
    return 0


def _as_of(text: str | None, now: datetime) -> datetime:
    if text is None:
        return now
    try:
        as_of = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of {text!r} is not an ISO time") from None
    if as_of.tzinfo is None:
        raise UsageError("--as-of needs a timezone (e.g. Z or +00:00)")
    return as_of


def _function_config(args: argparse.Namespace) -> Config:
    """The functions' configuration, as the Retention function has it: flags, else the environment, else (--local)
    the local stack's RetentionFunction environment, and (--local) its AWS."""
    environment: dict[str, str] = {}
    aws = AwsTarget()
    if args.local:
        stack_file = _stack_file(args)
        stack = _read_stack(stack_file)
        try:
            environment = {k: str(v) for k, v in stack["functions"][RETENTION_FUNCTION]["environment"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UsageError(f"the local stack in {stack_file} has no {RETENTION_FUNCTION}; restart it") from None
        aws = _local_target(stack)
    environment.update(os.environ)
    environment.update({env: getattr(args, env) for env in FUNCTION_NAMES if getattr(args, env)})
    missing = [env for env in FUNCTION_NAMES if not environment.get(env)]
    if missing:
        raise UsageError(f"set {', '.join(missing)} (or the matching flags, or --local)")
    return Config.model_validate({**{k.lower(): v for k, v in environment.items()}, "aws": aws})


def _retention_run(args: argparse.Namespace) -> int:
    from chatsphere.logic import retention
    from chatsphere.models.common import iso, utc_now
    from chatsphere.models.retention import RetentionCounts, RetentionJob

    now = utc_now()
    as_of = _as_of(args.as_of, now)
    if as_of > now and not args.dry_run:
        raise UsageError("--as-of is in the future: only a --dry-run may look ahead")
    config = _function_config(args)
    wiring = build(config)
    tenants = wiring.adapters.tenants
    if args.tenant is not None:
        if tenants.get_tenant(args.tenant) is None:
            raise UsageError(f"no tenant {args.tenant}")
        tenant_ids = [args.tenant]
    else:
        tenant_ids = tenants.tenant_ids()
    ports = wiring.retention
    report: dict[str, dict[str, Any]] = {}
    for tenant_id in tenant_ids:
        if args.dry_run:
            counts = retention.dry_run(ports, tenant_id, as_of, now)
            report[tenant_id] = {
                "would_remove": counts.removed,
                "kept_by_hold": counts.kept_by_hold,
                "still_active_profiles": counts.still_active,
            }
            continue
        job = RetentionJob(tenant_id=tenant_id, run_id=retention.new_run_id(utc_now()), as_of=iso(as_of))
        outcome = "continue"
        while outcome == "continue":
            outcome = retention.run_chunk(ports, job, utc_now(), config.retention_chunk).outcome
        record = ports.store.get_run(tenant_id, job.run_id)
        counts = record.counts if record else RetentionCounts()
        report[tenant_id] = {
            "run_id": job.run_id,
            # skipped: another run holds the tenant's lease (the schedule's, still going); this one stopped
            "status": "skipped" if outcome == "skipped" or record is None else record.status,
            "removed": counts.removed,
            "kept_by_hold": counts.kept_by_hold,
            "still_active_profiles": counts.still_active,
        }
    print(json.dumps({"as_of": iso(as_of), "dry_run": args.dry_run, "tenants": report}, sort_keys=True))
    return 0


def _verify(args: argparse.Namespace) -> int:
    """`chatsphere verify`: reads the receipt and the key, prints each check and the statement; loads no boto3."""
    from chatsphere.logic.evidence import NOT_RUN, verify_receipt

    try:
        document = json.loads(args.receipt.read_bytes())
        public_key_pem = args.public_key.read_bytes()
    except OSError as error:
        print(f"chatsphere: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    except ValueError:  # not UTF-8, or not JSON
        print(f"chatsphere: {args.receipt} is not JSON", file=sys.stderr)
        return 2
    verdict = verify_receipt(document, public_key_pem)
    for check in verdict.checks:
        status = "ok" if check.ok else "not run" if check.detail == NOT_RUN else "FAILED"
        print(f"{status:<8} {check.name:<10} {check.detail}")
    failed = next((check.name for check in verdict.checks if not check.ok), None)
    print(verdict.statement if verdict.ok else f"Not verified: the {failed} check failed.")
    return 0 if verdict.ok else 1


def _ledger(args: argparse.Namespace) -> int:
    """`chatsphere ledger verify` and `ledger rebuild`: one tenant's log, from the index and the locked bucket."""
    from chatsphere.logic import ledger

    ports = _named_wiring(args, LEDGER_NAMES).ledger
    if args.action == "rebuild":
        head = ledger.rebuild(ports, args.tenant)
        print(json.dumps({"tenant_id": args.tenant, "tree_size": head.size, "signed_heads": head.signed}))
        return 0
    try:
        key = args.public_key.read_bytes() if args.public_key else ports.signer.public_key_pem()
    except OSError as error:
        raise UsageError(f"cannot read {error.filename}: {error.strerror}") from None
    report = ledger.verify(ports, args.tenant, key)
    for fault in report.faults:
        where = f"entry #{fault.seq}" if fault.seq is not None else "the heads"
        print(f"FAILED   {fault.check:<10} {where}: {fault.detail}")
    if report.faults:
        first = next((f.seq for f in report.faults if f.seq is not None), None)
        print(
            f"Not verified: {len(report.faults)} fault(s)"
            + (f"; the first entry that breaks it is #{first}." if first is not None else ".")
        )
        return 1
    print(
        f"The ledger of tenant {args.tenant} verified: {report.entries} entries, {report.heads} signed heads, each "
        "signed by the key, each extending the one before, and the index matching the locked bucket."
    )
    return 0


def _tenants_offboard(args: argparse.Namespace) -> int:
    """Request, wait for the return, ask (unless --yes), confirm, wait for the end; prints the record."""
    import time

    from chatsphere.logic import offboarding
    from chatsphere.models.common import utc_now
    from chatsphere.models.offboarding import OffboardingIn

    wiring = build(_function_config(args))
    if wiring.adapters.tenants.get_tenant(args.tenant) is None:
        raise UsageError(f"no tenant {args.tenant}")
    ports = wiring.offboarding
    body = OffboardingIn(format=args.format, deliver_to=args.deliver_to)
    record, _ = offboarding.request_offboarding(ports, args.tenant, body, utc_now(), initiated_by="operator")

    def wait(until: tuple[str, ...]) -> Any:
        deadline = time.monotonic() + args.wait
        while True:
            item = ports.export.requests.get(args.tenant, record.request_id)
            if item is not None and item.status in until:
                return item
            if time.monotonic() > deadline:
                raise UsageError(f"the offboarding {record.request_id} did not reach {'/'.join(until)} in time")
            time.sleep(0.5)

    closed = ("completed", "completed_with_exceptions", "failed")
    item = wait(("awaiting_confirmation", *closed))
    if item.status == "awaiting_confirmation":
        result = item.result
        print(
            f"Returned: {result.packages} subjects' packages, {result.interactions} interactions; manifest "
            f"{result.manifest_sha256}" + (f", delivered to {result.delivered_to}" if result.delivered_to else ""),
            file=sys.stderr,
        )
        if not args.yes:
            answer = input(f"Delete every copy of tenant {args.tenant}'s data? Type the tenant id to confirm: ")
            if answer.strip() != args.tenant:
                print(f"Not confirmed; the offboarding {record.request_id} waits for confirmation.", file=sys.stderr)
                return 1
        offboarding.confirm_offboarding(ports, args.tenant, record.request_id, utc_now())
        item = wait(closed)
    print(json.dumps(_record_json(wiring, item), sort_keys=True))
    return 0 if item.status != "failed" else 1


def _record_json(wiring: Wiring, item: Any) -> Any:
    from chatsphere.logic.requests import to_record
    from chatsphere.models.common import utc_now

    return to_record(wiring.adapters.blobs, item, utc_now()).model_dump(mode="json")


def _tenants_receipt(args: argparse.Namespace) -> int:
    from chatsphere.logic import ledger

    ports = _named_wiring(args, LEDGER_NAMES).ledger
    found, after = None, None
    while True:
        page = ledger.audit_page(ports, args.tenant, 100, after, "offboarding.receipt", None, None)
        found = page.items[-1] if page.items else found
        if page.next_after is None:
            break
        after = page.next_after
    if found is None:
        raise UsageError(f"tenant {args.tenant} has no offboarding receipt in the ledger (not offboarded yet?)")
    document = json.dumps(ledger.receipt(ports, args.tenant, str(found.data["request_id"])), indent=2)
    if args.output is not None:
        args.output.write_text(document + "\n")
    else:
        print(document)
    return 0


COMMANDS = {
    ("tenants", "create"): _tenants_create,
    ("tenants", "list"): _tenants_list,
    ("tenants", "offboard"): _tenants_offboard,
    ("tenants", "receipt"): _tenants_receipt,
    ("keys", "create"): _keys,
    ("keys", "list"): _keys,
    ("keys", "revoke"): _keys,
    ("reconcile", None): _reconcile,
    ("retention", "run"): _retention_run,
    ("ledger", "verify"): _ledger,
    ("ledger", "rebuild"): _ledger,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.group == "verify":  # offline: no AWS, so neither boto3 nor botocore is loaded
        return _verify(args)
    from botocore.exceptions import BotoCoreError, ClientError

    command = COMMANDS[(args.group, getattr(args, "action", None))]
    try:
        return command(args)
    except UsageError as error:
        print(f"chatsphere: {error}", file=sys.stderr)
        return 2
    except DomainError as error:  # an unknown tenant or key, a malformed key id
        print(f"chatsphere: {error.detail}", file=sys.stderr)
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
