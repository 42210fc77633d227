"""`chatsphere` console command: operator tasks against real AWS or the local stack.

    chatsphere tenants create --name NAME      prints {"tenant_id": ..., "api_key": ...}

Names come from flags, else TENANTS_TABLE / DATA_KEY_ID, else (with --local) from the stack file that
`make run` writes along with the endpoint of its embedded AWS ($CHATSPHERE_LOCAL_DIR/stack.json,
by default .local/stack.json)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from chatsphere.bootstrap import key_wrapper, tenant_store
from chatsphere.logic.tenants import create_tenant


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
    create.add_argument("--local", action="store_true", help="use the running local stack (.local/stack.json)")
    local_dir = Path(os.environ.get("CHATSPHERE_LOCAL_DIR") or ".local")
    create.add_argument("--stack-file", default=local_dir / "stack.json", type=Path, help="default: %(default)s")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.local:
        stack = json.loads(args.stack_file.read_text())
        os.environ["AWS_ENDPOINT_URL"] = stack["aws_endpoint_url"]
        for name, value in stack.get("aws_env", {}).items():
            os.environ.setdefault(name, value)
        args.tenants_table = args.tenants_table or stack["resources"]["TenantsTable"]
        args.key_id = args.key_id or stack["resources"]["DataKey"]
    if not args.tenants_table or not args.key_id:
        print("chatsphere: set --tenants-table and --key-id (or TENANTS_TABLE and DATA_KEY_ID)", file=sys.stderr)
        return 2
    name = args.name.strip()
    if not 1 <= len(name) <= 128:
        print("chatsphere: --name must be 1 to 128 characters", file=sys.stderr)
        return 2
    tenant, api_key = create_tenant(tenant_store(args.tenants_table), key_wrapper(args.key_id), name)
    print(json.dumps({"tenant_id": tenant.tenant_id, "api_key": api_key}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
