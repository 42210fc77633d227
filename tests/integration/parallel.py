"""Parallel Lambda instances against one AWS: moto's server on a thread, handlers in forked processes.

In-process `mock_aws` cannot be shared between processes, and Powertools resolvers keep the current
request on a module-level app, so real races need processes: each child is one warm Lambda container
with its own gateway and clients, all talking to the same moto over HTTP, as instances do to DynamoDB."""

from __future__ import annotations

import functools
import multiprocessing
import threading
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.local.moto_server import MotoServer
from infra.provision import function_environment, provision
from infra.template import Resolver

FORK = multiprocessing.get_context("fork")
# DynamoDB applies each write (and each transaction) atomically with its condition; moto's server
# checks and applies in Python, on one thread per request, with no lock in between. Serialising
# moto's writes gives it DynamoDB's atomicity, and so makes a race test about our code, not moto's.
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def _atomic_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def atomic(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


def shared_aws_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Resolver]:
    """One moto server (writes atomic, as in DynamoDB) with template.yaml's resources, and every
    function's environment pointing at it."""
    import boto3

    from chatsphere import bootstrap
    from chatsphere.config import get_config
    from chatsphere.dal import clients

    _atomic_writes(monkeypatch)
    server = MotoServer(port=0)
    endpoint = server.start()
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - our own moto
    urllib.request.urlopen(reset, timeout=10)  # noqa: S310 - a fresh AWS for each test
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    clients.reset()
    get_config.cache_clear()
    bootstrap.wiring.cache_clear()
    try:
        resolver = provision(boto3.session.Session())
        for name, value in function_environment(resolver, "IntakeFunction").items():
            monkeypatch.setenv(name, value)
        yield resolver
    finally:
        clients.reset()
        get_config.cache_clear()
        bootstrap.wiring.cache_clear()
        server.stop()


def _child(task: Callable[..., Any], args: tuple[Any, ...], results: Any, index: int) -> None:
    from chatsphere import bootstrap
    from chatsphere.dal import clients

    clients.reset()  # a fresh container: no connection shared with the parent
    bootstrap.wiring.cache_clear()
    try:
        results.put((index, task(*args), None))
    except BaseException:  # reported to the parent, which fails the test
        results.put((index, None, traceback.format_exc()))


def in_parallel(tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]], timeout_s: float = 120) -> list[Any]:
    """Run each (function, args) in its own forked process at once; their return values, in order.

    Return values must be picklable; a child that raises fails the caller with its traceback."""
    results = FORK.Queue()
    children = [FORK.Process(target=_child, args=(fn, args, results, n)) for n, (fn, args) in enumerate(tasks)]
    for child in children:
        child.start()
    collected: dict[int, Any] = {}
    try:
        for _ in children:
            index, value, error = results.get(timeout=timeout_s)
            if error is not None:
                raise AssertionError(f"parallel task {index} failed:\n{error}")
            collected[index] = value
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
    return [collected[n] for n in range(len(tasks))]


def barrier(parties: int) -> Any:
    """A barrier the forked tasks share, so that they start their requests together."""
    return FORK.Barrier(parties)


def event() -> Any:
    """A flag the forked tasks share, to hold one of them at a chosen step until another has finished."""
    return FORK.Event()
