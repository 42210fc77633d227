"""`make run`: the whole stack on this machine, without Docker.

moto (AWS) on 127.0.0.1:$MOTO_PORT (default 5005) with template.yaml's stateful resources, two demo tenants (the
same ids and keys on every start: moto keeps everything in memory, so each start begins empty), and the API on
127.0.0.1:$PORT (default 3000): a gateway that runs the functions' handlers in this process.
Every schedule of template.yaml fires each $CHATSPHERE_SCHEDULE_SECONDS (default 60; 0: none).
It writes $CHATSPHERE_LOCAL_DIR/stack.json (default .local/) for `chatsphere ... --local` and `make invoke`,
serves until Ctrl-C or SIGTERM, then stops and removes that file. The terminal shows one line per request (method,
route template, status, duration: never the path, which holds ids); the functions' own JSON logs go to
$CHATSPHERE_LOCAL_DIR/functions.log."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from infra.local import AWS_ENV, Functions, function_specs, functions_log_file, local_dir, stack_file, use_local_aws
from infra.local.moto_server import DEFAULT_PORT, MotoServer

if TYPE_CHECKING:
    from infra.template import Resolver

HOST = "127.0.0.1"
# (name, API key): fixed, so that curl lines, scripts and events/*.json naming the first one work after a restart.
# Local only: these keys are public, and nothing deployed creates them (a deployed tenant's id and key are random).
DEMO_TENANTS = (
    ("Acme (demo)", "cs_t000000000000de01.acme-demo-key-for-the-local-stack-only-0001"),
    ("Globex (demo)", "cs_t000000000000de02.globex-demo-key-for-the-local-stack-only-02"),
)


class ConflictingEnvironment(Exception):
    pass


def shared_environment(environments: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """All functions share this process, so their environments must agree on every name they both set."""
    merged: dict[str, str] = {}
    for logical_id, env in environments.items():
        for name, value in env.items():
            if merged.setdefault(name, value) != value:
                raise ConflictingEnvironment(f"{logical_id} sets {name} unlike another function does")
    return merged


def curl_examples(api_url: str) -> list[str]:
    """What the banner suggests; $KEY is a demo tenant's API key."""
    auth = '-H "Authorization: Bearer $KEY"'
    send = f"{auth} -H 'Content-Type: application/json'"
    subject = f"{api_url}/v1/subjects/u-1001"  # the README's; events/*.json name the seeded u-1000
    return [
        f'curl -sS -X PUT {subject} {send} -d \'{{"name": "Ada Lovelace", "email": "ada@example.com"}}\'',
        f"curl -sS -X POST {subject}/interactions {send} "
        '-d \'{"conversation_id": "c-1", "role": "customer", "text": "Where is my order?"}\'',
        f"curl -sS {subject}/interactions {auth}",
        f'curl -sS -X POST {api_url}/v1/subject-lookups {send} -d \'{{"email": "ADA@example.com"}}\'',
    ]


def schedules_line(schedule_s: int) -> str:
    if schedule_s == 0:
        return "off (CHATSPHERE_SCHEDULE_SECONDS=0)"
    return f"every {schedule_s} seconds (CHATSPHERE_SCHEDULE_SECONDS; 0 turns them off)"


def paused_line(paused: frozenset[str]) -> str:
    if not paused:
        return "none (CHATSPHERE_PAUSE_WORKERS names functions whose queue stays unpolled)"
    return f"{', '.join(sorted(paused))}: their queue messages wait, their requests stay open"


def banner(
    state: Mapping[str, Any],
    path: Path,
    schedule_s: int,
    paused: frozenset[str] = frozenset(),
    samples: str = "not seeded",
) -> str:
    tenants = "\n".join(f"    {t['name']:<16} {t['tenant_id']}  {t['api_key']}" for t in state["tenants"])
    examples = "\n".join(f"  {line}" for line in curl_examples(state["api_url"]))
    return f"""
ChatSphere local stack
  API        {state["api_url"]}  (routes and authorizer from template.yaml)
  Reference  {state["api_url"]}/docs  (and {state["api_url"]}/openapi.json)
  AWS        {state["aws_endpoint_url"]}  (moto)
  State      {path}
  Logs       one line per request below; the functions' JSON logs in {functions_log_file()}
  Events     {path.parent / "events.log"}  (every RightsRequestStatusChanged and SubjectDeleted, one JSON line each)
  Schedules  {schedules_line(schedule_s)}
  Paused     {paused_line(paused)}
  Samples    {samples}
  Tenants
{tenants}

Try:
  export KEY={state["tenants"][0]["api_key"]}
{examples}

  .venv/bin/chatsphere tenants create --name "My tenant" --local
  make invoke FN=IntakeFunction EVENT=events/<file>.json
  make invoke FN=RetentionFunction EVENT=events/RetentionRun.json   # one schedule's run, now

Ctrl-C stops the stack.
"""


def sam_env_vars(state: Mapping[str, Any], moto_port: int = DEFAULT_PORT) -> dict[str, dict[str, str]]:
    """infra/env/local.json, from a running stack's state: the functions' environments as a Docker container
    (`sam local invoke --env-vars`) reaches the same moto. Keys are random per run, so a key's alias stands in."""
    from infra import template

    local, docker = state["aws_endpoint_url"], f"http://host.docker.internal:{moto_port}"
    refs = state["resources"]
    aliases = {}
    for logical, spec in template.resources("AWS::KMS::Alias").items():
        target = spec["Properties"]["TargetKeyId"]
        if isinstance(target, dict) and "Ref" in target:
            aliases[refs[target["Ref"]]] = refs[logical]

    def seen_from_docker(value: str) -> str:
        return next((alias for key, alias in aliases.items() if key in value), value.replace(local, docker))

    shared = {
        "AWS_ENDPOINT_URL": docker,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": state["aws_env"]["AWS_ACCOUNT_ID_ENDPOINT_MODE"],
    }
    functions = {
        logical_id: {name: seen_from_docker(value) for name, value in function["environment"].items()}
        for logical_id, function in sorted(state["functions"].items())
    }
    return {"Parameters": shared, **functions}


def _write_state(path: Path, state: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    partial.replace(path)  # readers never see half a file


def _remove_state(path: Path) -> None:
    """Remove the state file only if it is still this process's (another stack may have replaced it)."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def _serve(endpoint: str, port: int, schedule_s: int, paused: frozenset[str], stop: threading.Event) -> int:
    import boto3

    from infra import template
    from infra.provision import function_environment, provision

    use_local_aws(endpoint)
    resolver = provision(boto3.session.Session())
    environments = {logical_id: function_environment(resolver, logical_id) for logical_id in template.functions()}
    try:
        os.environ.update(shared_environment(environments))
    except ConflictingEnvironment as exc:
        print(f"run: {exc}; they cannot share one process", file=sys.stderr)
        return 1
    functions_log = functions_log_file()
    functions_log.parent.mkdir(parents=True, exist_ok=True)
    with functions_log.open("w", encoding="utf-8", buffering=1) as output:  # a fresh log per run, line by line
        return _serve_with(endpoint, port, schedule_s, paused, stop, resolver, environments, output)


def _serve_with(
    endpoint: str,
    port: int,
    schedule_s: int,
    paused: frozenset[str],
    stop: threading.Event,
    resolver: Resolver,
    environments: Mapping[str, Mapping[str, str]],
    output: TextIO,
) -> int:
    # Only now: handlers read their settings once, from the environment just set.
    from chatsphere.bootstrap import build
    from chatsphere.config import AwsTarget, Config
    from chatsphere.logic.tenants import create_tenant_with_key
    from infra.local import samples, workers
    from infra.local.gateway import Gateway, LocalServer

    functions = Functions(function_specs(), output=output)
    functions.load()
    gateway = Gateway.from_template(functions, stage=resolver.ref("Stage"))
    event_log = workers.EventLog(workers.subscribe_status_events(resolver), local_dir() / workers.EVENT_LOG)
    running = [*workers.from_template(functions, resolver, schedule_s, paused), event_log]
    try:
        server = LocalServer(gateway, HOST, port, workers=running)
    except OSError as exc:
        print(f"run: cannot listen on {HOST}:{port} ({exc.strerror}); set PORT", file=sys.stderr)
        return 1
    names = {
        "tenants_table": resolver.ref("TenantsTable"),
        "data_key_id": resolver.ref("DataKey"),
        "outbox_table": resolver.ref("OutboxTable"),
    }
    ports = build(Config.naming(AwsTarget(), **names)).tenants  # AWS as use_local_aws set it
    tenants = []
    for name, demo_key in DEMO_TENANTS:
        tenant, api_key = create_tenant_with_key(ports, name, demo_key)
        tenants.append({"tenant_id": tenant.tenant_id, "name": name, "api_key": api_key})
    # The requests events/*.json name, their jobs run by the pollers before those start (infra/local/samples.py).
    pollers = [w for w in running if isinstance(w, workers.SqsPoller | workers.StreamPoller)]
    try:
        seeded = samples.summary(samples.seed(gateway, tenants[0]["api_key"], tenants[1]["api_key"], pollers))
    except samples.SeedFailed as exc:
        seeded = f"not seeded ({exc}): the samples that name a request answer 404"
    state = {
        "api_url": server.url,
        "aws_endpoint_url": endpoint,
        "aws_env": AWS_ENV,
        "resources": resolver.refs,
        "tenants": tenants,
        "functions": {
            logical_id: {
                "handler": spec.handler,
                "memory_mb": spec.memory_mb,
                "timeout_s": spec.timeout_s,
                "environment": environments[logical_id],
            }
            for logical_id, spec in functions.specs.items()
        },
        "pid": os.getpid(),
    }
    path = stack_file()
    server.start()
    try:
        print(banner(state, path, schedule_s, paused, f"events/*.json {seeded}"), flush=True)
        _write_state(path, state)  # last: once it exists, everything above is done
        stop.wait()
    finally:
        server.stop()
        _remove_state(path)
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--sam-env-vars"]:
        # Regenerates infra/env/local.json from the running stack: ... --sam-env-vars > infra/env/local.json
        print(json.dumps(sam_env_vars(json.loads(stack_file().read_text())), indent=2))
        return 0
    if argv:
        print("usage: python -m infra.local.run [--sam-env-vars]", file=sys.stderr)
        return 2
    from infra.local.workers import BadPauseSetting, BadScheduleSetting, paused_functions, schedule_seconds

    try:
        schedule_s, paused = schedule_seconds(), paused_functions()
    except (BadScheduleSetting, BadPauseSetting) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for a clean shutdown
        print(f"\n{signal.Signals(signum).name}: stopping", file=sys.stderr, flush=True)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    # Read-only routes publish no metric, and Powertools warns about that (pyproject.toml silences it in tests).
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logging.getLogger("infra.local").addHandler(handler)
    logging.getLogger("infra.local").setLevel(logging.INFO)

    port = int(os.environ.get("PORT") or 3000)
    moto_port = int(os.environ.get("MOTO_PORT") or DEFAULT_PORT)
    moto = MotoServer(HOST, moto_port)
    try:
        endpoint = moto.start()
    except (OSError, SystemExit):  # werkzeug exits when the port is taken
        print(f"run: cannot listen on {HOST}:{moto_port} for moto; set MOTO_PORT", file=sys.stderr)
        return 1
    try:
        code = 0 if stop.is_set() else _serve(endpoint, port, schedule_s, paused, stop)
    finally:
        moto.stop()
    print("local stack stopped", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
