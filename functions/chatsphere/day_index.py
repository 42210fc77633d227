"""The day index's partitioning, which the DAL writes by and retention's and analytics' logic plan their reads by
(dal/keyspace.py has the index's keys): each day of a category is spread over DAY_SHARDS partitions, and items
written after their day may have been swept go to a LATE bucket instead."""

from __future__ import annotations

import hashlib

DAY_SHARDS = 4
LATE = "late"


def shard_of(item_id: str) -> int:
    """A stable shard for an item id (never a personal value), spread evenly."""
    return int.from_bytes(hashlib.blake2b(item_id.encode(), digest_size=4).digest(), "big") % DAY_SHARDS
