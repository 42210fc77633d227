"""Benchmarks that print figures (never timed asserts): `make bench`.

- AWS calls per API operation, against moto, beside the lower bound the design allows;
- an erasure's calls against its floor, without and with the evidence ledger's share (appending its entries,
  signing the head after it);
- the evidence ledger's calls per append, signed tree head, receipt and consistency proof on logs of 1k, 10k and
  100k entries (seeded in-process), and the proofs' hash counts;
- peak memory of an export at 1k and 10k interactions (in-memory ports), and their ratio;
- an offboarding's AWS calls per subject against the floor (moto, 1 and 1000 subjects by default, any sizes with
  BENCH_OFFBOARDING_SUBJECTS), and each invocation's peak memory at 1 and 1000 subjects (in-memory ports);
- the time to provision the template's stateful resources in-process (each integration test does), beside
  moto's CloudFormation making the same resources (docs/architecture.md: why it is not used);
- import time of each handler module as a ratio to `import boto3`, in fresh interpreters."""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any

import tests.conftest  # noqa: F401 - the test environment (credentials, region) before boto3 loads

# Each operation's minimum number of AWS calls, and why.
LOWER_BOUNDS: dict[str, tuple[int, str]] = {
    "PUT subject (new)": (
        3,
        "profile GetItem (create or replace?), KMS GenerateDataKey, one TransactWriteItems: profile and lookups, the"
        " key's conditional Put and the tombstone's ConditionCheck (an erased id is not created again)",
    ),
    "PUT subject (replace)": (4, "profile GetItem (version), key GetItem, KMS Decrypt, TransactWriteItems"),
    "GET subject": (3, "profile GetItem, key GetItem, KMS Decrypt"),
    "POST interaction (inline)": (5, "profile GetItem, key GetItem, KMS Decrypt, policy Query, TransactWriteItems"),
    "POST interaction (S3 text)": (6, "as inline, plus S3 PutObject"),
    "GET interactions (page of 50)": (
        5,
        "profile GetItem, key GetItem, KMS Decrypt, one Query, S3 GetObject per text over 32 KiB (one here)",
    ),
    "POST lookup": (
        2,
        "one index Query (tenant secret cached per container), a key GetItem per subject found (one here)",
    ),
    "POST export (request)": (
        6,
        "settings GetItem, profile GetItem, tombstone GetItem (a restored profile), record PutItem, SQS SendMessage,"
        " the RightsRequestStatusChanged PutEvents",
    ),
    "GET records-of-processing": (
        39,
        "settings GetItem, tenant GetItem, Select=COUNT Queries: 4 of MemberIndex (subjects), 1 of OpenRequestsIndex,"
        " 32 of DayIndex (the last 7 days' interactions: 7 days x 4 shards, and the late bucket's 4)",
    ),
}
# Why an operation makes more calls than its bound: printed under its line whenever it does.
ABOVE_BOUND: dict[str, str] = {
    "PUT subject (replace)": (
        "settings GetItem: the tenant's deadline for a correction record, read before the values are compared (a PUT"
        " that changes no value writes no record, and needs none)"
    ),
}


@contextmanager
def quiet() -> Iterator[None]:
    """Keeps what the measured code prints out of the tables: Powertools' JSON log lines (its handler holds the
    real stdout, so redirect_stdout misses them), metric lines, and warnings on stderr. Both file descriptors point
    at a scratch file meanwhile; its content is shown only if the measurement fails."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if failed:
                scratch.seek(0)
                sys.stderr.write(scratch.read().decode(errors="replace"))


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Counts every AWS API call any botocore client makes."""
    from botocore.client import BaseClient

    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(self: Any, operation: str, params: Any) -> Any:
        calls[f"{self.meta.service_model.service_name}:{operation}"] += 1
        return original(self, operation, params)

    BaseClient._make_api_call = counted
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original


def aws_calls() -> list[tuple[str, int, int, str]]:
    """(operation, calls made, lower bound, calls by API) for each operation, on a warm container."""
    from moto import mock_aws

    from chatsphere.dal import clients
    from infra.provision import function_environment, provision
    from tests.integration.helpers import call

    rows = []
    with mock_aws():
        clients.reset()
        resolver = provision()
        os.environ.update(function_environment(resolver, "IntakeFunction"))
        from chatsphere.bootstrap import wiring
        from chatsphere.config import get_config
        from chatsphere.logic.tenants import create_tenant

        get_config.cache_clear()
        wiring.cache_clear()
        tenant = create_tenant(wiring().tenants, "Bench")[0].tenant_id
        body = {"name": "Ada", "email": "ada@example.com", "phone": "+14155550100"}
        # Warms the tenant secret cache; its own address, so that the lookup below finds one subject, as its bound says.
        call("PUT", "/v1/subjects/warm", tenant=tenant, body={"email": "warm@example.com"})
        say = {"conversation_id": "c", "role": "customer"}
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("PUT subject (new)", lambda: call("PUT", "/v1/subjects/u-1", tenant=tenant, body=body)),
            (  # other values: a PUT of the same values changes nothing and writes nothing
                "PUT subject (replace)",
                lambda: call("PUT", "/v1/subjects/u-1", tenant=tenant, body={**body, "name": "Ada King"}),
            ),
            ("GET subject", lambda: call("GET", "/v1/subjects/u-1", tenant=tenant)),
            (
                "POST interaction (inline)",
                lambda: call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body={**say, "text": "hi"}),
            ),
            (
                "POST interaction (S3 text)",
                lambda: call(
                    "POST", "/v1/subjects/u-1/interactions", tenant=tenant, body={**say, "text": "x" * 40_000}
                ),
            ),
            ("GET interactions (page of 50)", lambda: call("GET", "/v1/subjects/u-1/interactions", tenant=tenant)),
            (
                "POST lookup",
                lambda: call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": "ada@example.com"}),
            ),
            (
                "POST export (request)",
                lambda: call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": "json"}),
            ),
            ("GET records-of-processing", lambda: call("GET", "/v1/records-of-processing", tenant=tenant)),
        ]
        for name, step in steps:
            with counting() as calls, redirect_stdout(io.StringIO()):  # the handlers' metric lines
                reply = step()
            assert reply.status < 300, (name, reply.body)
            rows.append(
                (
                    name,
                    sum(calls.values()),
                    LOWER_BOUNDS[name][0],
                    ", ".join(f"{k}x{v}" for k, v in sorted(calls.items())),
                )
            )
        clients.reset()
    return rows


# ------------------------------------------------------------------------------------------- erasure
ERASURE_SIZES = (1_000, 10_000)
S3_TEXTS = 3  # of the N interactions, this many have text over 32 KiB (in S3); the rest are inline
PAGE_BYTES = 1_000_000  # a Query page holds at most 1 MB of items (read before any projection)
BATCH = 25  # BatchWriteItem's keys per call
S3_BATCH = 1000  # ListObjectVersions' and DeleteObjects' keys per call


def item_bytes(raw: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it against a page's 1 MB: names plus values (near enough for pages)."""

    def size(value: dict[str, Any]) -> int:
        ((kind, inner),) = value.items()
        if kind == "S":
            return len(str(inner).encode())
        if kind == "B":
            return len(inner)
        if kind == "N":
            return len(str(inner)) // 2 + 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + 1 + size(v) for k, v in inner.items())
        if kind == "L":
            return 3 + sum(1 + size(v) for v in inner)
        if kind in ("SS", "NS", "BS"):
            return sum(len(v if isinstance(v, bytes) else str(v).encode()) for v in inner)
        return 1  # BOOL, NULL

    return sum(len(name.encode()) + size(value) for name, value in raw.items())


def chunked_pages(sizes: list[int], chunk: int) -> int:
    """Query pages to read these keys (in sort-key order) chunk by chunk, as the job does: a page ends at the
    chunk or at 1 MB of items; a last chunk that is exactly full needs one more (empty) read to see the end."""
    pages = 0
    for start in range(0, len(sizes) + 1, chunk):
        part = sizes[start : start + chunk]
        pages += max(1, -(-sum(part) // PAGE_BYTES))
        if len(part) < chunk:
            break
    return pages


@dataclass
class Erasure:
    interactions: int
    calls: Counter[str]
    invocations: int
    floor: dict[str, int]  # term -> calls
    extra: dict[str, int]  # why the job makes more -> calls
    ledger: Counter[str]  # LedgerFunction's calls appending the job's entries (and signing the head after)
    ledger_floor: dict[str, int]
    ledger_extra: dict[str, int]
    ledger_entries: int  # the job's entries the ledger appended
    ledger_runs: int  # LedgerFunction invocations (each sequences the tenant once)

    @property
    def made(self) -> int:
        return sum(self.calls.values())

    @property
    def bound(self) -> int:
        return sum(self.floor.values())

    @property
    def ledger_made(self) -> int:
        return sum(self.ledger.values())

    @property
    def ledger_bound(self) -> int:
        return sum(self.ledger_floor.values())


def erasure_calls(n: int) -> Erasure:
    """The AWS calls DeletionFunction makes to erase a subject of `n` interactions (`S3_TEXTS` of them in S3,
    with an idempotency record each), every invocation counted, continuations included; seeded in-process.
    After each invocation the outbox's stream is handed to LedgerFunction (the local stack's stream poller), and
    its calls appending the job's entries are counted apart (not the poller's own stream reads: Lambda's)."""
    import boto3
    from moto import mock_aws

    from chatsphere.dal import clients, keyspace
    from chatsphere.logic import deletion
    from infra.events import sqs_event
    from infra.provision import function_environment, provision
    from tests.integration.helpers import call, functions

    with mock_aws():
        clients.reset()
        resolver = provision()
        os.environ.update(function_environment(resolver, "DeletionFunction"))
        os.environ.pop("DELETION_CHUNK", None)  # the deployed chunk
        from chatsphere.bootstrap import wiring
        from chatsphere.config import get_config
        from chatsphere.logic.tenants import create_tenant

        get_config.cache_clear()
        wiring.cache_clear()
        assert get_config().deletion_chunk == deletion.CHUNK
        tenant = create_tenant(wiring().tenants, "Bench")[0].tenant_id
        person = {"name": "Ada", "email": "ada@example.com", "phone": "+14155550100"}
        with redirect_stdout(io.StringIO()):
            assert call("PUT", "/v1/subjects/u-1", tenant=tenant, body=person).status == 201
            for i in range(S3_TEXTS):
                body = {"conversation_id": "c", "role": "customer", "text": f"{i} " + "x" * 40_000}
                headers = {"Idempotency-Key": f"k-{i}"}
                r = call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body, headers=headers)
                assert r.status == 201, r.body
            body = {"conversation_id": "c", "role": "agent", "text": "How can I help you with your order today?"}
            assert call("POST", "/v1/subjects/u-1/interactions", tenant=tenant, body=body).status == 201
        # The rest of the inline interactions: copies of the one just written, each under its own key.
        ddb, table = boto3.client("dynamodb"), resolver.refs["SubjectsTable"]
        pk = keyspace.subject_pk(tenant, "u-1")
        stored = ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :i)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":i": {"S": keyspace.INTERACTION_PREFIX}},
        )["Items"]
        template = next(i for i in stored if "text_sealed" in i)
        copies = []
        for k in range(n - S3_TEXTS - 1):
            iid = f"bench{k:08d}"
            at = template["occurred_at"]["S"]
            sk = keyspace.interaction_sk(at, iid)
            copies.append({**template, "sk": {"S": sk}, "interaction_id": {"S": iid}})
        for start in range(0, len(copies), BATCH):
            puts = [{"PutRequest": {"Item": item}} for item in copies[start : start + BATCH]]
            assert not ddb.batch_write_item(RequestItems={table: puts}).get("UnprocessedItems")
        # Every item of the partition, for the floor's page count: those just written, and those read back.
        others = [
            ddb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
            for sk in (keyspace.PROFILE_SK, keyspace.lookup_sk("email"), keyspace.lookup_sk("phone"))
        ]
        partition = [*stored, *copies, *(item for item in others if item)]
        records = S3_TEXTS
        versions = S3_TEXTS

        with redirect_stdout(io.StringIO()):
            accepted = call("DELETE", "/v1/subjects/u-1", tenant=tenant)  # the request: not the job's calls
        assert accepted.status == 202, accepted.body
        stream = LedgerStream(resolver, tenant)
        stream.deliver()  # the entries before the job (the key's, the request's): not the job's
        stream.runs = 0
        ledger, deliveries = Counter[str](), []
        sqs, queue = boto3.client("sqs"), resolver.refs["DeletionQueue"]
        arn = resolver.attrs[("DeletionQueue", "Arn")]
        invocations, calls = 0, Counter[str]()
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, AttributeNames=["All"]).get(
                "Messages", []
            )
            if not messages:
                break
            with counting() as counted, redirect_stdout(io.StringIO()):
                reply = functions().invoke("DeletionFunction", sqs_event(messages, arn))
            assert not (reply or {}).get("batchItemFailures"), reply
            calls.update(counted)
            invocations += 1
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
            before = stream.size()
            ledger.update(stream.deliver())
            deliveries.append(stream.size() - before)
        record = call("GET", f"/v1/requests/{accepted.body['request_id']}", tenant=tenant).body
        assert record["status"] == "completed", record
        removed = record["result"]["removed"]
        assert removed["interactions"] == n and removed["object_versions"] == versions, removed
        assert removed["idempotency_records"] == records, removed
        clients.reset()

    chunk = deletion.CHUNK
    keys = len(partition)  # profile, lookups and interactions, in sort-key order (interactions first)
    order = sorted(partition, key=lambda item: item["sk"]["S"])
    continuations = invocations - 1
    floor = {
        "key Query pages": chunked_pages([item_bytes(i) for i in order], chunk),
        "key BatchWriteItem": -(-keys // BATCH),
        "idempotency Query": max(1, -(-records // chunk)),
        "idempotency BatchWriteItem": -(-records // BATCH),
        "S3 ListObjectVersions": max(1, -(-versions // S3_BATCH)),
        "S3 DeleteObjects": -(-versions // S3_BATCH),
        # fixed: the record read by each invocation and written at the start, after each step, at completion;
        # the continuation messages; the data key read (counted) and deleted; the profile read (lookup digests);
        # the subject's records read (exports to cancel, records to pseudonymise); the tombstone opened and
        # completed; the event; and the read-back the design requires before completion (subject partition,
        # object versions, idempotency records, data key, one index Query per identifier).
        "record GetItem": invocations,
        "record UpdateItem": 1 + len(deletion.STEPS) + 1,
        "SQS SendMessage (continuations)": continuations,
        "data key GetItem + DeleteItem": 2,
        "profile GetItem": 1,
        "subject's records Query": 1,
        "tombstone PutItem": 2,
        "EventBridge PutEvents": 3,  # SubjectDeleted, and RightsRequestStatusChanged: in_progress, completed
        "read-back": 4 + 2,
    }
    # What the design does beyond the floor, and why (the sum is checked against the calls made).
    extra = {
        "the inventory reads every key once more, to count before removing (1 MB pages, no chunk)": greedy_pages(
            [item_bytes(i) for i in order]
        ),
        "the inventory reads the idempotency keys and object versions once more": 1 + max(1, -(-versions // S3_BATCH)),
        "the sweep reads the partition and the prefix again, for writes that raced the close": 2,
        "the subject's records are read again at completion (a hold lifted meanwhile leaves a record)": 1,
        "the receipt names the privacy policy in force: one policy Query at completion (issue 16)": 1,
    }
    batches = sum(-(-k // LEDGER_APPEND) for k in deliveries)
    appended_runs = sum(1 for k in deliveries if k)
    ledger_floor = {
        "outbox Query": batches,
        "head GetItem": batches,
        "id marks BatchGetItem": batches,
        "TransactWriteItems": batches,
        "entry PutObject": sum(deliveries),
        "signed head: Sign, PutItem, PutObject, PutEvents": 4,
    }
    ledger_extra = {
        "a full batch asks the outbox once more (it may not be the last)": sum(k // LEDGER_APPEND for k in deliveries),
        "each batch marks the head archived (a crash re-archives from it)": batches,
        "the signed head marks the head signed (the daily run skips a tree that has not grown)": 1,
        "a run with nothing to append (outbox Query, head GetItem)": 2 * (stream.runs - appended_runs),
    }
    return Erasure(
        n,
        calls,
        invocations,
        floor,
        extra,
        ledger,
        ledger_floor,
        {k: v for k, v in ledger_extra.items() if v},
        sum(deliveries),
        stream.runs,
    )


class LedgerStream:
    """OutboxTable's stream handed to LedgerFunction, as the local stack's stream poller does (one poller, so that
    each record is delivered once); counts the function's invocations."""

    def __init__(self, resolver: Any, tenant: str) -> None:
        import boto3

        from infra.local import workers
        from tests.integration.helpers import functions

        (self.mapping,) = [
            w for w in workers.from_template(functions(), resolver, schedule_s=0) if isinstance(w, workers.StreamPoller)
        ]
        self.mapping.retry_delay_s = 0
        self.streams, self.ddb = boto3.client("dynamodbstreams"), boto3.client("dynamodb")
        self.table, self.tenant = resolver.refs["LedgerTable"], tenant
        self.runs = 0

    def deliver(self, max_batches: int = 50) -> Counter[str]:
        """Every record not yet handed over; the calls the function made (the stream's reads left out)."""
        with counting() as counted, redirect_stdout(io.StringIO()):
            for _ in range(max_batches):
                if not self.mapping.poll_once(self.streams):
                    break
                self.runs += 1
        return Counter({k: v for k, v in counted.items() if not k.startswith("dynamodbstreams:")})

    def size(self) -> int:
        """The tenant's tree size (not counted)."""
        key = {"pk": {"S": f"T#{self.tenant}#L"}, "sk": {"S": "HEAD"}}
        item = self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return int(item["size"]["N"]) if item else 0


def greedy_pages(sizes: list[int]) -> int:
    """Query pages to read every key in one pass (no Limit): each page holds items while they fit in 1 MB."""
    pages, used = 1, 0
    for size in sizes:
        if used + size > PAGE_BYTES:
            pages, used = pages + 1, 0
        used += size
    return pages


# The authorizer's goal counts its first request's setup too: the import, then the DynamoDB client its key read
# builds (boto3, its session and the service model), which every cold request pays before the handler runs.
AUTHORIZER_FIRST_CLIENT = "from chatsphere.dal import clients; clients.client('dynamodb')"


def import_ratio(module: str, runs: int = 7, then: str = "") -> tuple[float, float, float]:
    """Median seconds to import `module` (and run `then`) and to import boto3, in fresh interpreters, interleaved,
    and their ratio.

    The interpreters see Lambda's environment variables, so the X-Ray SDK takes its Lambda path
    (outside Lambda it builds a sampling client at import, which a cold start never pays)."""
    env = {**os.environ, "LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "bench"}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)  # not set in Lambda: the Tracer patches botocore at import

    def timed(stmt: str) -> float:
        code = f"import time; t=time.perf_counter(); {stmt}; print(time.perf_counter()-t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        return float(out.stdout.strip().splitlines()[-1])

    ours, base = [], []
    for _ in range(runs):  # interleaved, so that a burst of load on a shared machine hits both alike
        ours.append(timed(f"import {module}; {then}" if then else f"import {module}"))
        base.append(timed("import boto3"))
    return statistics.median(ours), statistics.median(base), statistics.median(ours) / statistics.median(base)


def built_sizes() -> tuple[dict[str, int], int] | str:
    """Each function's artifact from `sam build` (bytes), and the boto3, botocore and s3transfer share of one; or
    why it was not measured. Needs `sam` and python3.12 (template.yaml's runtime) on PATH, and pip's registry."""
    import shutil

    from infra import template

    missing = [tool for tool in ("sam", "python3.12") if shutil.which(tool) is None]
    if missing:
        return f"skipped: {' and '.join(missing)} not on PATH (aws-sam-cli in its own venv; docs/benchmarks.md)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as scratch:
        build = os.path.join(scratch, "build")
        done = subprocess.run(
            ["sam", "build", "--build-dir", build, "--cache-dir", os.path.join(scratch, "cache"), "--no-cached"],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
        if done.returncode:
            return f"skipped: sam build failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"

        def size(path: str) -> int:
            return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)

        sizes = {name: size(os.path.join(build, name)) for name in template.functions()}
        first = os.path.join(build, next(iter(sizes)))
        sdk = sum(size(os.path.join(first, p)) for p in ("boto3", "botocore", "s3transfer"))
        return sizes, sdk


def print_built_sizes() -> None:
    print("Built artifact per function (`sam build`, python3.12; boto3 pinned in each: docs/benchmarks.md)")
    with quiet():
        found = built_sizes()
    if isinstance(found, str):
        print(f"  {found}")
        return
    sizes, sdk = found
    for name, total in sizes.items():
        print(f"  {name:24} {total / 2**20:6.1f} MiB")
    print(f"  of which boto3, botocore and s3transfer: {sdk / 2**20:.1f} MiB in each")


def print_erasures() -> None:
    from chatsphere.logic.deletion import CHUNK

    print(f"AWS calls of an erasure (DeletionFunction, every invocation; moto; chunk {CHUNK}; {S3_TEXTS} texts in S3)")
    print(
        "  floor = sum over chunks of ceil(chunk bytes / 1 MB) key Query pages + ceil(keys / 25) BatchWriteItem\n"
        "        + idempotency: ceil(records / chunk) Query + ceil(records / 25) BatchWriteItem\n"
        "        + S3: ceil(versions / 1000) ListObjectVersions + ceil(versions / 1000) DeleteObjects\n"
        "        + fixed: record GetItem per invocation, SendMessage per continuation, record UpdateItem per step\n"
        "          (+ start, completion), data key GetItem + DeleteItem, profile GetItem, the subject's records\n"
        "          Query, tombstone PutItem x2, PutEvents x3 (SubjectDeleted, two status changes),\n"
        "          read-back (4 stores + 1 index Query per identifier)"
    )
    with quiet():
        erasures = [erasure_calls(n) for n in ERASURE_SIZES]
    print(f"  {'interactions':>12} {'invocations':>11} {'calls':>6} {'floor':>6} {'ratio':>6}  by API")
    for n, e in zip(ERASURE_SIZES, erasures, strict=True):
        detail = ", ".join(f"{k}x{v}" for k, v in sorted(e.calls.items()))
        print(f"  {n:>12} {e.invocations:>11} {e.made:>6} {e.bound:>6} {e.made / e.bound:>6.2f}  {detail}")
        print(f"  {'':>12} floor terms: " + ", ".join(f"{k} {v}" for k, v in e.floor.items()))
        unexplained = e.made - e.bound - sum(e.extra.values())
        why = "; ".join(f"{reason} (+{calls})" for reason, calls in e.extra.items())
        print(
            f"  {'':>12} above the floor by {e.made - e.bound}: {why}"
            + (f"; unexplained {unexplained:+d}" * bool(unexplained))
        )
        print_ledger_share(e)


def print_ledger_share(e: Erasure) -> None:
    """The erasure's figures again with the ledger in them: LedgerFunction's calls beside the ledger's floor."""
    made, bound = e.made + e.ledger_made, e.bound + e.ledger_bound
    detail = ", ".join(f"{k}x{v}" for k, v in sorted(e.ledger.items()))
    print(
        f"  {'':>12} with the ledger: {made} calls for a floor of {bound}: {made / bound:.2f}"
        f" (without: {e.made / e.bound:.2f}); the ledger {e.ledger_made} for {e.ledger_bound}"
        f" ({e.ledger_entries} entries, {e.ledger_runs} LedgerFunction runs): {detail}"
    )
    print(f"  {'':>12} ledger floor terms: " + ", ".join(f"{k} {v}" for k, v in e.ledger_floor.items()))
    unexplained = e.ledger_made - e.ledger_bound - sum(e.ledger_extra.values())
    why = "; ".join(f"{reason} (+{calls})" for reason, calls in e.ledger_extra.items())
    print(
        f"  {'':>12} the ledger above its floor by {e.ledger_made - e.ledger_bound}: {why}"
        + (f"; unexplained {unexplained:+d}" * bool(unexplained))
    )


# ------------------------------------------------------------------------------------------- ledger
LEDGER_SIZES = (1_000, 10_000, 100_000)
# Seeded whole up to this size. Moto takes about 0.4 ms an item (a log of n entries is about 4n items: leaves, id
# marks, perfect nodes), so beyond it only the items a measurement can read are written: the head, the signed head,
# the request's leaves and marks, and the nodes its proofs need (every call's count is the same: none reads more).
LEDGER_FULL_UP_TO = 10_000
LEDGER_TENANT = "t-bench"
LEDGER_REQUEST = "r-bench"
# The erasure's entries at the start of the log (the receipt last, at seq 4): its proof to the head is the deepest.
RECEIPT_SEQ = 4
LEDGER_NOW = "2026-12-01T00:00:00Z"
LEDGER_APPEND = 10  # logic/ledger.BATCH: the entries of one append transaction (checked when measured)

# Each ledger operation's minimum number of AWS calls, and why.
LEDGER_BOUNDS: dict[str, tuple[int, str]] = {
    "append (one batch)": (
        5 + LEDGER_APPEND,
        "outbox Query (the stream carries keys only), head GetItem (size and frontier: the single writer's"
        " condition), id marks BatchGetItem (an entry id is appended once), one TransactWriteItems (leaves, marks,"
        " nodes, head and the outbox's removal, or none of them), a PutObject per entry (S3 has no batch put; each"
        " is its own locked object), the head's archived UpdateItem (a crash re-archives from it)",
    ),
    "signed tree head": (
        5,
        "head GetItem (the root from the frontier), KMS Sign, signed head PutItem, its PutObject, PutEvents",
    ),
    "receipt (proof included)": (
        3,
        "RequestIndex Query (the request's entries), signed heads Query (Limit 1: the first over it), one"
        " BatchGetItem of the proof's perfect nodes (at most 2 log2 n + 2, under 100 keys)",
    ),
    "consistency proof": (2, "head GetItem (the sizes must be in the tree), one BatchGetItem of the nodes"),
}
LEDGER_ABOVE: dict[str, str] = {
    "append (one batch)": (
        "the outbox Query again: a full batch of 10 may not be the last (a shorter one ends the run without it)"
    ),
    "signed tree head": "the head's signed UpdateItem (the daily run skips a tree that has not grown from it)",
}


@dataclass
class LedgerBench:
    size: int
    full: bool  # every item written, or only what the measurements read
    calls: dict[str, Counter[str]]  # operation -> calls by API
    hashes: dict[str, int]  # operation -> hashes in its proof
    nodes: dict[str, int]  # operation -> perfect nodes read for it
    verified: bool  # the receipt verifies offline and the consistency proof checks


def ledger_entries(size: int) -> list[Any]:
    """The seeded log: an erasure's five entries first (created, in progress, the tombstone's two phases, the
    receipt), then settings changes."""
    from chatsphere.models.ledger import LedgerEntry

    at = "2026-01-01T00:00:00Z"

    def entry(seq: int, kind: Any, data: dict[str, Any]) -> LedgerEntry:
        return LedgerEntry(entry_id=f"seed-{seq:08d}", tenant_id=LEDGER_TENANT, type=kind, at=at, data=data)

    request = {"request_id": LEDGER_REQUEST, "request_type": "deletion"}
    head = [
        entry(0, "request.created", {**request, "status": "received"}),
        entry(1, "request.status_changed", {**request, "status": "in_progress"}),
        entry(2, "deletion.tombstone", {"request_id": LEDGER_REQUEST, "subject_hash": "ab" * 32, "phase": "started"}),
        entry(3, "deletion.tombstone", {"request_id": LEDGER_REQUEST, "subject_hash": "ab" * 32, "phase": "completed"}),
        entry(
            RECEIPT_SEQ,
            "deletion.receipt",
            {**request, "status": "completed", "subject_hash": "ab" * 32, "counts": {"interactions": 1000}},
        ),
    ]
    return head + [entry(seq, "settings.changed", {"fields": ["deadline_days"]}) for seq in range(len(head), size)]


def consistency_from(size: int) -> int:
    return size // 2 + 1  # neither a power of two nor the frontier's: a proof of every kind of step


def seed_ledger(ports: Any, size: int, full: bool) -> None:
    """Compute the tenant's tree of `size` entries in-process (`merkle.append`), sign its head with the ledger's key,
    and write it into LedgerTable with BatchWriteItem in the DAL's own shapes (`DynamoLedgerIndex.restore`)."""
    from chatsphere.logic import evidence, ledger, merkle
    from chatsphere.models.ledger import LedgerHead, SignedTreeHead, TreeHead

    leaves = [(entry, ledger.stored_entry(entry, seq)) for seq, entry in enumerate(ledger_entries(size))]
    frontier, nodes = merkle.append(0, [], [bytes.fromhex(s.leaf_hash) for _, s in leaves])
    root = merkle.frontier_root(size, frontier)
    tree_head = TreeHead(tenant_id=LEDGER_TENANT, tree_size=size, root_hash=root.hex(), timestamp=LEDGER_NOW)
    signature, key_id = ports.signer.sign(evidence.tree_head_message(tree_head.model_dump()))
    signed = SignedTreeHead(tree_head=tree_head, signature=signature, key_id=key_id)
    head = LedgerHead(
        tenant_id=LEDGER_TENANT, size=size, frontier=[h.hex() for h in frontier], archived=size, signed=size
    )
    if not full:
        old = consistency_from(size)
        read = (
            merkle.needed_for_inclusion(RECEIPT_SEQ, size)
            | merkle.needed_for_consistency(old, size)
            | set(merkle.frontier_nodes(old))
            | set(merkle.frontier_nodes(size))
        )
        nodes = {node: h for node, h in nodes.items() if node in read}
        leaves = leaves[: RECEIPT_SEQ + 1]
    ports.index.restore(LEDGER_TENANT, leaves, {n: h.hex() for n, h in nodes.items()}, head, [signed])


def ledger_calls(size: int, full: bool | None = None) -> LedgerBench:
    """The AWS calls of a receipt, a consistency proof, one append of BATCH entries and one signed head, on a
    tenant's log of `size` entries seeded in-process (whole, or with only what is read: `LEDGER_FULL_UP_TO`)."""
    from moto import mock_aws

    from chatsphere.dal import clients
    from chatsphere.dal.ledger import DynamoOutbox
    from chatsphere.logic import evidence, ledger, merkle
    from chatsphere.models.ledger import event
    from infra.provision import function_environment, provision

    full = size <= LEDGER_FULL_UP_TO if full is None else full
    calls: dict[str, Counter[str]] = {}
    hashes: dict[str, int] = {}
    nodes: dict[str, int] = {}
    with mock_aws():
        clients.reset()
        resolver = provision()
        os.environ.update(function_environment(resolver, "LedgerFunction"))
        from chatsphere.bootstrap import wiring
        from chatsphere.config import get_config

        get_config.cache_clear()
        wiring.cache_clear()
        ports = wiring().ledger
        seed_ledger(ports, size, full)

        with counting() as calls["receipt (proof included)"]:
            receipt = ledger.receipt(ports, LEDGER_TENANT, LEDGER_REQUEST)
        hashes["receipt (proof included)"] = len(receipt["inclusion_proof"])
        nodes["receipt (proof included)"] = len(merkle.needed_for_inclusion(RECEIPT_SEQ, size))
        verified = evidence.verify_receipt(receipt, ports.signer.public_key_pem()).ok

        old = consistency_from(size)
        with counting() as calls["consistency proof"]:
            proof = ledger.consistency(ports, LEDGER_TENANT, old, size)
        hashes["consistency proof"] = len(proof["proof"])
        nodes["consistency proof"] = len(
            merkle.needed_for_consistency(old, size)
            | set(merkle.frontier_nodes(old))
            | set(merkle.frontier_nodes(size))
        )
        verified = verified and merkle.verify_consistency(
            old,
            size,
            bytes.fromhex(proof["from_root"]),
            bytes.fromhex(proof["to_root"]),
            [bytes.fromhex(h) for h in proof["proof"]],
        )
        verified = verified and proof["to_root"] == receipt["tree_head"]["root_hash"]

        assert ledger.BATCH == LEDGER_APPEND, ledger.BATCH
        outbox = DynamoOutbox(get_config().outbox_table)
        for k in range(ledger.BATCH):  # the actions' own writes: not the append's calls
            outbox.record(event(LEDGER_TENANT, "settings.changed", f"2026-12-01T00:00:{k:02d}Z", fields=["locale"]))
        with counting() as calls["append (one batch)"]:
            appended = ledger.sequence(ports, LEDGER_TENANT, LEDGER_NOW)
        assert appended == ledger.BATCH, appended

        with counting() as calls["signed tree head"]:
            signed = ledger.sign(ports, LEDGER_TENANT, LEDGER_NOW)
        assert signed is not None and signed.tree_head.tree_size == size + ledger.BATCH, signed
        clients.reset()
    return LedgerBench(size, full, calls, hashes, nodes, verified)


REPORT_TENANT = "t0000000000re9047"


def report_calls(records: int) -> Counter[str]:
    """The AWS calls of a year's request metrics report for a tenant with `records` records received over 365
    days. The counters are seeded as the records' own transactions leave them: one item per day of receipt, each
    ADDed once with what that day's records add (the DAL's own metrics_op), instead of `records` transactions."""
    from datetime import UTC, date, datetime, timedelta

    from moto import mock_aws

    from chatsphere.dal import clients
    from chatsphere.dal.requests import metrics_op
    from chatsphere.logic import reports
    from infra.provision import function_environment, provision

    first = date(2026, 1, 1)
    with mock_aws():
        clients.reset()
        resolver = provision()
        os.environ.update(function_environment(resolver, "RightsFunction"))
        from chatsphere.bootstrap import wiring
        from chatsphere.config import get_config

        get_config.cache_clear()
        wiring.cache_clear()
        table = resolver.refs["RequestsTable"]
        ddb = clients.client("dynamodb")
        for day in range(365):
            received = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(days=day)
            n = records // 365 + (1 if day < records % 365 else 0)
            counts = {
                "n#deletion#received": n,
                "n#deletion#completed": n,
                "d#deletion#3": n,
                "s#deletion": n * 259200000,
            }
            ddb.update_item(**metrics_op(table, REPORT_TENANT, received.isoformat(), counts)["Update"])
        with counting() as calls:
            report = reports.request_report(
                wiring().reports, REPORT_TENANT, first + timedelta(days=365), first, first + timedelta(days=364)
            )
        assert sum(t.received for t in report.types) == records  # the seeding is what the report reads
    return calls


def print_reports() -> None:
    print("AWS calls of a year's request metrics report (GET /v1/reports/requests; moto; counters per day of receipt)")
    for records in (1_000, 100_000):
        calls = report_calls(records)
        detail = ", ".join(f"{op}x{n}" for op, n in sorted(calls.items()))
        print(f"  {records:>7} records: {sum(calls.values())} calls ({detail})")
    print(
        "  bound: one Query page of the year's 365 day items (each well under 1 KB): the same at any number of records"
    )


def print_ledger() -> None:
    from chatsphere.logic.ledger import BATCH as LEDGER_BATCH

    print(
        f"AWS calls of the evidence ledger (moto; one tenant's log seeded in-process; an append of {LEDGER_BATCH}"
        " entries, the batch; the receipt of an erasure at the log's start, proven to the head at the log's size)"
    )
    with quiet():
        results = [ledger_calls(n) for n in LEDGER_SIZES]
        sparse = ledger_calls(LEDGER_FULL_UP_TO, full=False)  # the check of seeding only what is read
    sizes = "".join(f" {f'{n // 1000}k':>6}" for n in LEDGER_SIZES)
    print(f"  {'operation':26} {'calls at':>8}{sizes} {'bound':>5}  {'proof hashes at':>15}{sizes}")
    for name, (bound, why) in LEDGER_BOUNDS.items():
        made = [sum(r.calls[name].values()) for r in results]
        counts = "".join(f" {m:>6}" for m in made)
        proof = "".join(f" {r.hashes[name]:>6}" for r in results) if name in results[0].hashes else ""
        print(f"  {name:26} {'':>8}{counts} {bound:>5}  {'':>15}{proof}")
        print(f"  {'':26} by API: " + ", ".join(f"{k}x{v}" for k, v in sorted(results[-1].calls[name].items())))
        print(f"  {'':26} bound: {why}")
        if max(made) > bound:
            print(f"  {'':26} above the bound by {max(made) - bound}: {LEDGER_ABOVE.get(name, 'not explained yet')}")
    append = results[0].calls["append (one batch)"]
    print(f"  per entry appended: {sum(append.values()) / LEDGER_BATCH:.1f} calls (of which 1 PutObject)")
    for r in results:
        reads = ", ".join(f"{name.split(' ')[0]} {r.nodes[name]} nodes" for name in r.nodes)
        print(
            f"  {r.size:>7} entries: ceil(log2 n) = {(r.size - 1).bit_length():>2}; read {reads};"
            f" {'seeded whole' if r.full else 'seeded with only the items read'};"
            f" receipt and consistency proof {'verify' if r.verified else 'DO NOT VERIFY'}"
        )
    flat = all(len({sum(r.calls[name].values()) for r in results}) == 1 for name in LEDGER_BOUNDS)
    depth = {r.size: (r.size - 1).bit_length() for r in results}
    within = all(
        r.hashes["receipt (proof included)"] <= depth[r.size] and r.hashes["consistency proof"] <= depth[r.size] + 1
        for r in results
    )
    print(
        f"  calls the same at every size: {'yes' if flat else 'NO'}; proofs within ceil(log2 n) hashes"
        f" (a consistency proof one more): {'yes' if within else 'NO'}"
    )
    (whole,) = [r for r in results if r.size == LEDGER_FULL_UP_TO]
    same = (whole.calls, whole.hashes) == (sparse.calls, sparse.hashes)
    print(
        f"  seeded at {LEDGER_FULL_UP_TO} with only the items read: {'the same' if same else 'NOT the same'} calls"
        " and proofs as seeded whole"
    )


RETENTION_DUE = 1000
RETENTION_STORED = (10_000, 100_000)
RETENTION_SUBJECTS = 40
SWEEP_READS = 2  # logic/sweep.py: count_orphans and remove_orphans each read every shard (day_index.DAY_SHARDS)


@dataclass
class RetentionBench:
    stored: int
    calls: Counter[str]
    invocations: int
    query_pages: int  # Query calls on a DayIndex: the day buckets read
    floor: int

    @property
    def made(self) -> int:
        return sum(self.calls.values())


def retention_calls(stored: int, due: int = RETENTION_DUE) -> RetentionBench:
    """A steady-state daily run of one tenant: yesterday's run left the watermark, `due` interactions of the next day
    are due, and `stored - due` more are stored on later days. Seeded in-process (BatchWriteItem); every call of the
    run's invocations counted (not the schedule's fan-out, one SendMessage per tenant)."""
    from datetime import UTC, datetime, timedelta

    import boto3
    from moto import mock_aws

    from chatsphere import day_index
    from chatsphere.dal import clients, keyspace
    from chatsphere.models.common import iso
    from infra.events import sqs_event
    from infra.provision import function_environment, provision
    from tests.integration.helpers import call, functions

    now = datetime.now(UTC)
    with mock_aws():
        clients.reset()
        resolver = provision()
        os.environ.update(function_environment(resolver, "RetentionFunction"))
        os.environ.pop("RETENTION_CHUNK", None)  # the deployed chunk
        from chatsphere.bootstrap import wiring
        from chatsphere.config import get_config
        from chatsphere.logic.tenants import create_tenant

        get_config.cache_clear()
        wiring.cache_clear()
        tenant = create_tenant(wiring().tenants, "Bench")[0].tenant_id
        with redirect_stdout(io.StringIO()):
            body = call("GET", "/v1/settings", tenant=tenant).body
            body["retention"]["interactions"] = {"days": 30, "action": "delete"}
            assert call("PUT", "/v1/settings", tenant=tenant, body=body).status == 200
        cutoff = now - timedelta(days=30)
        due_day = (cutoff - timedelta(days=1)).replace(hour=12)
        ddb, table = boto3.client("dynamodb"), resolver.refs["SubjectsTable"]
        items: list[dict[str, Any]] = []
        for n in range(stored):
            when = due_day if n < due else cutoff + timedelta(days=1 + n % 29)
            subject, iid, occurred = f"u-{n % RETENTION_SUBJECTS}", f"i{n:08d}", iso(when)
            items.append(
                {
                    "pk": keyspace.subject_pk(tenant, subject),
                    "sk": keyspace.interaction_sk(occurred, iid),
                    "subject_id": subject,
                    "conversation_id": f"c-{n % 97}",
                    "role": "customer",
                    "occurred_at": occurred,
                    "text_sealed": b"\x00" * 120,
                    **keyspace.day_entry(tenant, "interactions", occurred, iid),
                }
            )
        for n in range(RETENTION_SUBJECTS):  # the subjects' profiles, open and unheld: their removals' condition
            subject = f"u-{n}"
            items.append(
                {
                    "pk": keyspace.subject_pk(tenant, subject),
                    "sk": keyspace.PROFILE_SK,
                    "tenant_id": tenant,
                    "subject_id": subject,
                    "status": "active",
                    "created_at": iso(now),
                    "updated_at": iso(now),
                    "version": 1,
                }
            )
        from chatsphere.dal.dynamo import serialise

        for start in range(0, len(items), BATCH):
            puts = [{"PutRequest": {"Item": serialise(i)}} for i in items[start : start + BATCH]]
            assert not ddb.batch_write_item(RequestItems={table: puts}).get("UnprocessedItems")
        store = wiring().adapters.retention_store
        for category in ("interactions", "export_packages", "inactive_profiles", "closed_requests"):
            store.advance_watermark(tenant, category, (due_day - timedelta(days=1)).date().isoformat())

        with redirect_stdout(io.StringIO()):
            functions().invoke("RetentionFunction", {"as_of": iso(now)})  # the fan-out: not the run's calls
        sqs, queue = boto3.client("sqs"), resolver.refs["RetentionQueue"]
        arn = resolver.attrs[("RetentionQueue", "Arn")]
        invocations, calls = 0, Counter[str]()
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, AttributeNames=["All"]).get(
            "Messages", []
        ):
            with counting() as counted, redirect_stdout(io.StringIO()):
                reply = functions().invoke("RetentionFunction", sqs_event(messages, arn))
            assert not (reply or {}).get("batchItemFailures"), reply
            calls.update(counted)
            invocations += 1
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
        with redirect_stdout(io.StringIO()):
            (run,) = call("GET", "/v1/retention/runs", tenant=tenant).body["items"]
        assert run["removed"] == {"interactions": due}, run
        clients.reset()
    # Not day buckets: every invocation's HoldIndex Query, the run's one watermark Query, and the orphan sweep's
    # reads of the erased-subjects bucket (every shard, when it counts and when it removes; nobody erased here).
    pages = calls["dynamodb:Query"] - invocations - 1 - SWEEP_READS * day_index.DAY_SHARDS
    return RetentionBench(stored, calls, invocations, pages, pages + removal_transactions(due))


def removal_transactions(due: int) -> int:
    """One TransactWriteItems per subject and REMOVALS_PER_TRANSACTION of its due items (the bench's subjects take
    the due items in turn)."""
    from chatsphere.models.retention import REMOVALS_PER_TRANSACTION

    per_subject = [len(range(n, due, RETENTION_SUBJECTS)) for n in range(RETENTION_SUBJECTS)]
    return sum(-(-k // REMOVALS_PER_TRANSACTION) for k in per_subject)


def print_retention() -> None:
    print(
        f"AWS calls of a daily retention run (RetentionFunction, every chunk; moto; {RETENTION_DUE} interactions due"
        f" from {RETENTION_SUBJECTS} subjects)"
    )
    from chatsphere.models.retention import REMOVALS_PER_TRANSACTION

    print(
        "  floor = the day-bucket Query pages read + one TransactWriteItems per subject per"
        f" {REMOVALS_PER_TRANSACTION} of its due items (the profile's ConditionCheck, its activity marker and the"
        " act's record beside them)"
    )
    print(f"  {'stored':>8} {'invocations':>11} {'calls':>6} {'floor':>6} {'ratio':>6}  by API")
    with quiet():
        results = [retention_calls(n) for n in RETENTION_STORED]
    for r in results:
        detail = ", ".join(f"{k}x{v}" for k, v in sorted(r.calls.items()))
        print(f"  {r.stored:>8} {r.invocations:>11} {r.made:>6} {r.floor:>6} {r.made / r.floor:>6.2f}  {detail}")
    print(
        "  above the floor: per invocation the run record GetItem, the HoldIndex Query and the commit"
        " (TransactWriteItems); per run the lease GetItem, the watermark Query, the settings GetItem, the"
        " watermark PutItems that move, the orphan sweep's Queries (every shard of the erased-subjects bucket,"
        f" {SWEEP_READS} times; no subject erased here), and a continuation SendMessage when the chunk (1000)"
        " ends exactly at the due count"
    )
    small, large = results
    print(f"  calls at {large.stored} stored / at {small.stored} stored: {large.made / small.made:.2f}")


PROVISION_RUNS = 9


def provisioning_times(runs: int = PROVISION_RUNS) -> dict[str, float]:
    """Median seconds, in-process moto, of: provision() as the tests call it; provision() on a plain new
    boto3 session (every service model read again); moto's create_stack of the same resources."""
    import json
    import warnings

    import boto3
    from moto import mock_aws

    from infra import template
    from infra.provision import APPLIED, provision

    stateful = {k: v for k, v in template.resources().items() if v["Type"] in APPLIED}
    # The roles SAM makes for functions, which a stateful resource may name (the ledger's key and bucket policies):
    # plain roles here, since the functions themselves are not part of this body.
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    for function in template.functions():
        if f"{function}Role" in json.dumps(stateful):
            stateful[f"{function}Role"] = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}
    loaded = template.load()
    body = json.dumps({"Parameters": loaded["Parameters"], "Conditions": loaded["Conditions"], "Resources": stateful})

    def stack() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # each resource type moto's CloudFormation skips
            boto3.client("cloudformation").create_stack(StackName="chatsphere-local", TemplateBody=body)

    ways: dict[str, Callable[[], Any]] = {
        "provision()": provision,
        "provision(boto3.session.Session())": lambda: provision(boto3.session.Session()),
        "moto create_stack (with its gaps)": stack,
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for run in range(runs + 1):  # interleaved, the first round (imports, caches) not counted
        for name, way in ways.items():
            with mock_aws():
                start = time.perf_counter()
                way()
                if run:
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(found) for name, found in times.items()}


# ---------------------------------------------------------------- offboarding
OFFBOARDED_TEXTS = 2  # interactions per subject of the offboarding bench
# The fewest calls per subject (2 inline interactions, an email, nothing in S3, no idempotency record), and why.
OFFBOARDING_FLOOR = {
    "return: profile GetItem, key GetItem, KMS Decrypt, interactions Query, package PutObject": 5,
    "deletion request: profile GetItem, tombstone GetItem (a restored copy), TransactWriteItems, PutEvents": 4,
    "erasure, as the erasure section's floor for such a subject: key Query, BatchWriteItem, idempotency Query, "
    "ListObjectVersions, record GetItem, 10 record writes (start, 8 steps, end), key GetItem + DeleteItem, profile "
    "GetItem, records Query, 2 tombstone writes, 3 PutEvents, a 5-call read-back": 29,
}
# And per 25 subjects: the package lines' BatchWriteItem, and their removal with the erasures' records at the end.
OFFBOARDING_FLOOR_PER_25 = 3


@dataclass
class OffboardingBench:
    subjects: int
    calls: Counter[str]
    invocations: int

    @property
    def made(self) -> int:
        return sum(self.calls.values())

    @property
    def floor(self) -> int:
        n = self.subjects
        return n * sum(OFFBOARDING_FLOOR.values()) + -(-n // 25) * OFFBOARDING_FLOOR_PER_25


def offboarding_calls(n: int) -> OffboardingBench:
    """Both phases of an offboarding of `n` subjects through DeletionFunction's own logic (every invocation and
    continuation counted, the confirmation not), seeded through the API in-process."""
    from moto import mock_aws

    from chatsphere.dal import clients
    from infra.provision import function_environment, provision
    from tests.integration.helpers import call

    with mock_aws():
        clients.reset()
        resolver = provision()
        os.environ.update(function_environment(resolver, "DeletionFunction"))
        from chatsphere.bootstrap import wiring
        from chatsphere.config import get_config
        from chatsphere.logic import offboarding
        from chatsphere.logic.tenants import create_tenant
        from chatsphere.models.common import utc_now
        from chatsphere.models.deletion import DeletionJob
        from chatsphere.models.offboarding import OffboardingIn

        get_config.cache_clear()
        wiring.cache_clear()
        tenant = create_tenant(wiring().tenants, "Bench")[0].tenant_id
        with redirect_stdout(io.StringIO()):
            for i in range(n):
                body = {"name": "Ada", "email": f"ada.{i}@example.com"}
                assert call("PUT", f"/v1/subjects/u-{i}", tenant=tenant, body=body).status == 201
                for k in range(OFFBOARDED_TEXTS):
                    text = {"conversation_id": "c", "role": "customer", "text": f"message {k}"}
                    assert call("POST", f"/v1/subjects/u-{i}/interactions", tenant=tenant, body=text).status == 201
        ports = wiring().offboarding
        record, _ = offboarding.request_offboarding(ports, tenant, OffboardingIn(), utc_now())
        job = DeletionJob(tenant_id=tenant, request_id=record.request_id, scope="tenant")
        calls, invocations = Counter[str](), 0
        for ending in ("awaiting_confirmation", "done"):
            while True:
                with counting() as counted, redirect_stdout(io.StringIO()):
                    outcome = offboarding.run_offboarding(ports, job, utc_now())
                calls.update(counted)
                invocations += 1
                if outcome == ending:
                    break
            if ending == "awaiting_confirmation":
                offboarding.confirm_offboarding(ports, tenant, record.request_id, utc_now())
        done = ports.export.requests.get(tenant, record.request_id)
        assert done is not None and done.status == "completed", done
        clients.reset()
    return OffboardingBench(n, calls, invocations)


def print_offboarding() -> None:
    from tests.unit.offboarding_memory import offboarding_peak

    sizes = [int(n) for n in os.environ.get("BENCH_OFFBOARDING_SUBJECTS", "1,1000").split(",")]
    print(
        f"Offboarding: both phases, per subject of {OFFBOARDED_TEXTS} interactions, against the floor (moto; "
        f"{offboarding_subjects_per_run()} subjects per invocation)"
    )
    for term, calls in OFFBOARDING_FLOOR.items():
        print(f"  floor {calls:>2}: {term}")
    print(f"  floor, per 25 subjects: {OFFBOARDING_FLOOR_PER_25} (package lines written, and removed with the records)")
    with quiet():
        runs = [offboarding_calls(n) for n in sizes]
    print(f"  {'subjects':>8} {'invocations':>11} {'calls':>7} {'floor':>7} {'ratio':>6} {'per subject':>11}")
    for b in runs:
        print(
            f"  {b.subjects:>8} {b.invocations:>11} {b.made:>7} {b.floor:>7} {b.made / b.floor:>6.2f} "
            f"{b.made / b.subjects:>11.1f}"
        )
    largest = runs[-1]
    by_api = ", ".join(f"{k.split(':')[1]} {v / largest.subjects:.1f}" for k, v in largest.calls.most_common())
    print(f"  per subject at {largest.subjects}, by API: {by_api}")
    print(
        "  above the floor: the deletion path's own reads (it counts before it removes, sweeps once more for writes"
        " that raced the close, re-reads the subject's records at completion; the erasure section above), the "
        "walk's pages, the tally of the erasures' records, and the reads of what the tenant leaves"
    )
    print(
        "  (1000 subjects take about 6.5 minutes and 6.6 GB of moto here; infra/moto_patches.py keeps moto's Query and"
        " ListObjectVersions to the partition or prefix asked, as AWS does: without it, O(N²))"
    )
    with quiet():
        small, large = offboarding_peak(1), offboarding_peak(1000)
    print(
        f"  peak memory of an invocation (in-memory ports, tracemalloc): 1 subject {small / 1024:.0f} KiB, "
        f"1000 subjects {large / 1024:.0f} KiB, ratio {large / small:.2f} (tests/unit/test_offboarding_logic.py holds"
        " it within 1.5)"
    )


def offboarding_subjects_per_run() -> int:
    from chatsphere.logic.offboarding import SUBJECTS_PER_RUN

    return SUBJECTS_PER_RUN


def main() -> int:
    import warnings

    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    print("AWS calls per operation (warm container, moto)")
    with quiet():
        rows = aws_calls()
    print(f"  {'operation':32} {'calls':>5} {'bound':>5}  by API")
    for name, made, bound, detail in rows:
        print(f"  {name:32} {made:>5} {bound:>5}  {detail}")
        if made > bound:
            print(f"  {'':32} above the bound by {made - bound}: {ABOVE_BOUND.get(name, 'not explained yet')}")
    print()
    print_erasures()
    print()
    print_ledger()
    print()
    print_reports()
    print()
    print_retention()
    print()
    print_offboarding()
    print()
    print("Export peak memory (in-memory ports, tracemalloc; a real S3 upload adds one 8 MiB part buffer)")
    from tests.unit.export_memory import export_peak

    with quiet():
        small, large = export_peak(1_000), export_peak(10_000)
    print(f"  1k interactions:  {small / 1024:8.0f} KiB")
    print(f"  10k interactions: {large / 1024:8.0f} KiB")
    print(f"  ratio 10k/1k:     {large / small:8.2f}  (tests/unit/test_export_memory.py holds it within 1.5)")
    print()
    print(f"Provisioning the stateful resources in-process (moto, median of {PROVISION_RUNS})")
    with quiet():
        provisioned = provisioning_times()
    for name, seconds in provisioned.items():
        print(f"  {name:40} {seconds * 1000:6.0f} ms")
    print()
    print("Import time, ratio to `import boto3` (median of 7 fresh interpreters; goal 2.0 or less)")
    from infra import template

    authorizer = template.functions()[template.authorizer()[0]].module
    for fn in template.functions().values():
        first = AUTHORIZER_FIRST_CLIENT if fn.module == authorizer else ""
        with quiet():
            ours, base, ratio = import_ratio(fn.module, then=first)
        # The authorizer runs before every cold request: its goal is the tighter one, with its first client.
        goal = "  (authorizer, with its first client: goal 1.5 or less)" if first else ""
        if ratio > (1.5 if first else 2.0):
            goal += "  ABOVE the goal this run"
        print(f"  {fn.module:36} {ours * 1000:7.0f} ms  boto3 {base * 1000:5.0f} ms  ratio {ratio:5.2f}{goal}")
    print()
    print_built_sizes()
    return 0


if __name__ == "__main__":
    sys.exit(main())
