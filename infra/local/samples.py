"""The requests that events/*.json name, made by `make run` on its demo tenants (and by tests/infra/test_events.py
before it runs the samples), so that every sample answers 2xx as the file stands.

Everything goes through the real flows: the API in-process through the local gateway with the demo keys (the
authorizer included), and the jobs through the same queue and stream pollers the stack runs, drained here before
they start. Only the request ids are fixed (`fixed_request_ids`), since the sample files carry them. Local only:
nothing deployed runs this module.

- `Acme (demo)`, the first tenant, which the README uses too: `u-1000`, the subject every subject sample names (as
  events/PutSubject.json puts it), with one interaction and its completed export (GetRequest, ExportJobs); `u-0999`,
  erased (GetReceipt, DeletionJobs), so that the tenant's ledger has entries and a signed head (GetLedgerConsistency,
  Outbox). The README's own subject is `u-1001`: its erasure leaves the samples alone.
- `Globex (demo)`, the second: `u-2000` and the tenant's offboarding, its data returned and awaiting confirmation
  (RequestOffboarding answers 200 with it, GetOffboardingManifest, ExtendRequest, ConfirmOffboarding). Invoking
  ConfirmOffboarding ends that tenant: the offboarding samples name it so that no sample can end the first one.

All of it is synchronous and done before the state file is written: a sample works as soon as `make run` shows its
banner. A paused worker (CHATSPHERE_PAUSE_WORKERS) is not drained, so its requests stay open, as it promises."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3

from infra.local.gateway import Gateway, Reply, Request
from infra.local.workers import SqsPoller, StreamPoller

# Fixed ids in new_request_id's shape (r, 12 hex of a time, 16 hex): the one time prefix marks them as seeded.
EXPORT_ID = "r0123456789ab0000000000000e01"  # GetRequest, ExportJobs
DELETION_ID = "r0123456789ab0000000000000d01"  # GetReceipt, DeletionJobs, Outbox
OFFBOARDING_ID = "r0123456789ab0000000000000f02"  # GetOffboardingManifest, ExtendRequest, ConfirmOffboarding
EXPORTED, ERASED, OFFBOARDED = "u-1000", "u-0999", "u-2000"
# Fake values only (example.com, +1 415 555 01xx), as in every sample.
# The exported one is the subject every subject sample names, as events/PutSubject.json puts it (tested).
PEOPLE: dict[str, dict[str, Any]] = {
    EXPORTED: {
        "name": "Grace Example",
        "email": "grace@example.com",
        "phone": "+14155550100",
        "contact": {"telegram": "@grace_example"},
    },
    ERASED: {"name": "Alan Example", "email": "alan@example.com", "phone": "+14155550102"},
    OFFBOARDED: {"name": "Hedy Example", "email": "hedy@example.com", "phone": "+14155550103"},
}
DRAIN_ROUNDS = 200  # a guard against a job that never settles, not a limit a seed reaches (it takes about 20)
Worker = SqsPoller | StreamPoller


class SeedFailed(Exception):
    pass


class UnexpectedRequest(SeedFailed):
    pass


@contextmanager
def fixed_request_ids(*ids: str) -> Iterator[None]:
    """While it lasts, every new request record gets the next of `ids`, in order, instead of new_request_id's time
    and randomness; the flow must make exactly that many. Local seeding only (it patches the logic module this
    process runs: no other request may be served meanwhile)."""
    from chatsphere.logic import requests

    pending = list(ids)
    real = requests.new_request_id

    def next_id(now: datetime) -> str:
        if not pending:
            raise UnexpectedRequest("the flow made more request records than the seed named")
        return pending.pop(0)

    requests.new_request_id = next_id  # restored below
    try:
        yield
    finally:
        requests.new_request_id = real
    if pending:
        raise UnexpectedRequest(f"the flow made {len(ids) - len(pending)} request records, not {len(ids)}")


@dataclass
class Api:
    """The local gateway, called in-process with one tenant's key."""

    gateway: Gateway
    key: str

    def call(self, method: str, path: str, body: Any = None, expect: Sequence[int] = (200,)) -> Reply:
        headers = [("Authorization", f"Bearer {self.key}")]
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        sent = json.dumps(body).encode() if body is not None else b""
        reply = self.gateway.handle(Request(method, path, headers, sent))
        if reply.status not in expect:
            title = _problem_title(reply)  # a problem's title names its kind, never a value
            raise SeedFailed(f"{method} {path.split('/')[2]}: {reply.status} {title}")
        return reply

    def status(self, request_id: str) -> str | None:
        reply = self.call("GET", f"/v1/requests/{request_id}", expect=(200, 404))
        return str(json.loads(reply.body)["status"]) if reply.status == 200 else None


def _problem_title(reply: Reply) -> str:
    try:
        return str(json.loads(reply.body).get("title", ""))
    except (ValueError, AttributeError):
        return ""


def drain(workers: Sequence[Worker]) -> int:
    """Poll every queue and stream until a whole round delivers nothing; returns how many messages and records
    were delivered. A failed message goes back to its queue, as the running poller leaves it."""
    sqs, streams = boto3.client("sqs"), boto3.client("dynamodbstreams")
    delivered = 0
    for _ in range(DRAIN_ROUNDS):
        got = sum(w.poll_once(sqs) if isinstance(w, SqsPoller) else w.poll_once(streams) for w in workers)
        if not got:
            return delivered
        delivered += got
    raise SeedFailed(f"the jobs did not settle in {DRAIN_ROUNDS} rounds")


def seed(gateway: Gateway, first_key: str, second_key: str, workers: Sequence[Worker]) -> dict[str, str | None]:
    """Make what the samples name, on a stack whose demo tenants have these keys; `workers` are the queue and stream
    pollers to run the jobs with (not yet started). Returns each seeded request's status. A request already there
    is left as it is."""
    acme, globex = Api(gateway, first_key), Api(gateway, second_key)
    if acme.status(EXPORT_ID) is None:
        acme.call("PUT", f"/v1/subjects/{EXPORTED}", PEOPLE[EXPORTED], expect=(200, 201))
        interaction = {"conversation_id": "c-1000", "role": "customer", "text": "Please send me my data."}
        acme.call("POST", f"/v1/subjects/{EXPORTED}/interactions", interaction, expect=(201,))
        with fixed_request_ids(EXPORT_ID):
            acme.call("POST", f"/v1/subjects/{EXPORTED}/exports", {"format": "json"}, expect=(202,))
    if acme.status(DELETION_ID) is None:
        acme.call("PUT", f"/v1/subjects/{ERASED}", PEOPLE[ERASED], expect=(200, 201))
        with fixed_request_ids(DELETION_ID):
            acme.call("DELETE", f"/v1/subjects/{ERASED}", expect=(202,))
    if globex.status(OFFBOARDING_ID) is None:
        globex.call("PUT", f"/v1/subjects/{OFFBOARDED}", PEOPLE[OFFBOARDED], expect=(200, 201))
        with fixed_request_ids(OFFBOARDING_ID):
            globex.call("POST", "/v1/offboarding", {"format": "json"}, expect=(202,))
    drain(workers)
    return {
        "GetRequest": acme.status(EXPORT_ID),
        "GetReceipt": acme.status(DELETION_ID),
        "GetOffboardingManifest": globex.status(OFFBOARDING_ID),
    }


# What each sample needs its request to be, for the banner's line.
READY = {
    "GetRequest": ("completed",),
    "GetReceipt": ("completed",),
    "GetOffboardingManifest": ("awaiting_confirmation",),
}


def summary(statuses: dict[str, str | None]) -> str:
    """One line: whether every seeded request is where its samples need it."""
    waiting = [f"{name} ({status or 'missing'})" for name, status in statuses.items() if status not in READY[name]]
    if not waiting:
        return "ready: each names a seeded request (events/README.md)"
    return f"not yet for {', '.join(waiting)} (a paused worker leaves its request open; else see the functions' log)"
