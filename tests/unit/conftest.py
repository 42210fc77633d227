"""The fixtures most unit tests share: a world of fakes, and a tenant in it. A test module that needs another
tenant (with settings of its own, a subject already in it) defines its own `tenant`, which wins over this one."""

from __future__ import annotations

import pytest

from tests.unit.fakes import World


@pytest.fixture
def world() -> World:
    """Every port in memory, wired by bootstrap.build as the functions are (tests/unit/fakes.py)."""
    return World()


@pytest.fixture
def tenant(world: World) -> str:
    return world.new_tenant()[0]
