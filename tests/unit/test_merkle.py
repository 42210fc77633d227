"""The ledger's Merkle tree (logic/merkle.py) against RFC 6962/9162's published test vectors, against the reference
`root()` for every size up to 70, and, with hypothesis, on larger trees and for the O(log n) bound on stored reads."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatsphere.logic import merkle

# The test vectors below are Google's RFC 6962 reference data: transparency-dev/merkle, testonly/constants.go
# (LeafInputs, RootHashes) and proof/verify_test.go (inclusionProofs, consistencyProofs; that file numbers leaves
# from 1, the cases here from 0), the same as trillian's merkle/rfc6962 tests.
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = {  # tree size -> root over the first `size` LEAF_INPUTS
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
LEAF_HASHES = [  # level 0 of testonly/constants.go NodeHashes
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
INCLUSION_VECTORS = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY_VECTORS = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
OTHER_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def build(leaf_hashes: Sequence[bytes]) -> tuple[list[bytes], dict[merkle.Node, bytes]]:
    return merkle.append(0, [], leaf_hashes)


VECTOR_LEAVES = [merkle.leaf_hash(data) for data in LEAF_INPUTS]
VECTOR_FRONTIER, VECTOR_NODES = build(VECTOR_LEAVES)


def test_hash_definitions() -> None:
    assert merkle.EMPTY_ROOT.hex() == ROOTS[0]
    assert [h.hex() for h in VECTOR_LEAVES] == LEAF_HASHES
    assert merkle.node_hash(VECTOR_LEAVES[0], VECTOR_LEAVES[1]).hex() == ROOTS[2]


@pytest.mark.parametrize("size", range(9))
def test_published_roots(size: int) -> None:
    assert merkle.root(VECTOR_LEAVES[:size]).hex() == ROOTS[size]
    frontier, _ = build(VECTOR_LEAVES[:size])
    assert merkle.frontier_root(size, frontier).hex() == ROOTS[size]
    assert merkle.range_hash(0, size, VECTOR_NODES).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_published_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    assert [h.hex() for h in merkle.inclusion_proof(index, size, VECTOR_NODES)] == path
    proof = [bytes.fromhex(h) for h in path]
    root = bytes.fromhex(ROOTS[size])
    assert merkle.verify_inclusion(VECTOR_LEAVES[index], index, size, proof, root)
    assert not merkle.verify_inclusion(VECTOR_LEAVES[index], index, size, proof, OTHER_HASH)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY_VECTORS)
def test_published_consistency_proofs(old: int, new: int, path: list[str]) -> None:
    assert [h.hex() for h in merkle.consistency_proof(old, new, VECTOR_NODES)] == path
    proof = [bytes.fromhex(h) for h in path]
    old_root, new_root = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    if old != new:
        assert not merkle.verify_consistency(old, new, new_root, old_root, proof)


def test_frontier_nodes() -> None:
    assert merkle.frontier_nodes(0) == []
    assert merkle.frontier_nodes(1) == [(0, 0)]
    assert merkle.frontier_nodes(7) == [(2, 0), (1, 2), (0, 6)]
    assert merkle.frontier_nodes(8) == [(3, 0)]
    assert merkle.frontier_nodes(13) == [(3, 0), (2, 2), (0, 12)]


def test_range_nodes_follow_the_split() -> None:
    assert merkle.range_nodes(0, 0) == []
    assert merkle.range_nodes(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert merkle.range_nodes(8, 13) == [(2, 2), (0, 12)]
    assert merkle.range_nodes(4, 8) == [(2, 1)]
    assert merkle.range_nodes(2, 6) == [(1, 1), (1, 2)]  # [2, 6) splits at 2: two perfect nodes, not one
    with pytest.raises(ValueError, match="not a subtree"):
        merkle.range_nodes(1, 4)
    with pytest.raises(ValueError, match="start <= end"):
        merkle.range_nodes(3, 2)


def test_builders_refuse_outside_their_domain() -> None:
    with pytest.raises(ValueError, match="index < size"):
        merkle.inclusion_ranges(3, 3)
    with pytest.raises(ValueError, match="old <= new"):
        merkle.consistency_ranges(4, 3)
    with pytest.raises(ValueError, match="frontier"):
        merkle.append(3, [OTHER_HASH], [OTHER_HASH])
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.append(0, [], [b"short"])
    with pytest.raises(KeyError):
        merkle.inclusion_proof(0, 8, {})
    assert merkle.consistency_ranges(0, 5) == [] and merkle.consistency_ranges(5, 5) == []


def inclusion_probes(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> list[tuple[bytes, int, int, list[bytes], bytes]]:
    """Every way the verifier must refuse a good inclusion proof once changed (after transparency-dev's
    corruptInclusionProof)."""
    probes = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        # (not size + 1: a path fixes the tree's shape along it, not its size; leaf 0's path in a tree of 3
        # leaves is also its path in one of 4 whose last two leaves hash to the third's hash)
        (OTHER_HASH, index, size, proof, root),
        (b"WrongLeaf", index, size, proof, root),
        (leaf, index, size, proof, merkle.EMPTY_ROOT),
        (leaf, index, size, proof, OTHER_HASH),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [root, *proof], root),
        (leaf, index, size, [*proof, b""], root),
    ]
    for i in range(len(proof)):
        for position in (0, 31):
            flipped = bytearray(proof[i])
            flipped[position] ^= 8
            probes.append((leaf, index, size, [*proof[:i], bytes(flipped), *proof[i + 1 :]], root))
    if proof:
        probes.append((leaf, index, size, proof[:-1], root))
        probes.append((leaf, index, size, proof[1:], root))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], OTHER_HASH, *proof[1:]], root))
        probes.append((leaf, index, size, [proof[1], proof[0], *proof[2:]], root))
    return probes


def consistency_probes(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> list[tuple[int, int, bytes, bytes, list[bytes]]]:
    """Every way the verifier must refuse a good, non-empty consistency proof once changed (after
    transparency-dev's corruptConsistencyProof)."""
    probes = [
        (old - 1, new, old_root, new_root, proof),
        (old + 1, new, old_root, new_root, proof),
        (old ^ 2, new, old_root, new_root, proof),
        (old, new * 2, old_root, new_root, proof),
        (old, new // 2, old_root, new_root, proof),
        (old, new, OTHER_HASH, new_root, proof),
        (old, new, old_root, OTHER_HASH, proof),
        (old, new, new_root, old_root, proof),
        (old, new, b"WrongRoot", new_root, proof),
        (old, new, old_root, new_root, []),
        (old, new, old_root, new_root, [*proof, old_root]),
        (old, new, old_root, new_root, [*proof, new_root]),
        (old, new, old_root, new_root, [old_root, *proof]),
        (old, new, old_root, new_root, [new_root, *proof]),
        (old, new, old_root, new_root, [proof[0], *proof]),
        (old, new, old_root, new_root, proof[:-1]),
        (old, new, old_root, new_root, [*proof, b""]),
    ]
    for i in range(len(proof)):
        flipped = bytearray(proof[i])
        flipped[0] ^= 16
        probes.append((old, new, old_root, new_root, [*proof[:i], bytes(flipped), *proof[i + 1 :]]))
    return probes


def check_inclusion(leaf_hashes: list[bytes], nodes: dict[merkle.Node, bytes], index: int, size: int) -> None:
    root = merkle.root(leaf_hashes[:size])
    proof = merkle.inclusion_proof(index, size, nodes)
    assert merkle.verify_inclusion(leaf_hashes[index], index, size, proof, root), (index, size)
    for probe in inclusion_probes(leaf_hashes[index], index, size, proof, root):
        assert not merkle.verify_inclusion(*probe), (index, size, probe)


def check_consistency(leaf_hashes: list[bytes], nodes: dict[merkle.Node, bytes], old: int, new: int) -> None:
    old_root, new_root = merkle.root(leaf_hashes[:old]), merkle.root(leaf_hashes[:new])
    proof = merkle.consistency_proof(old, new, nodes)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof), (old, new)
    if proof:
        for probe in consistency_probes(old, new, old_root, new_root, proof):
            assert not merkle.verify_consistency(*probe), (old, new, probe)


SMALL = 70
SMALL_LEAVES = leaves(SMALL)


@pytest.mark.parametrize("n", range(SMALL + 1))
def test_append_matches_the_reference_root(n: int) -> None:
    expected = merkle.root(SMALL_LEAVES[:n])
    frontier: list[bytes] = []
    stored: dict[merkle.Node, bytes] = {}
    for size in range(n):  # one leaf at a time
        frontier, completed = merkle.append(size, frontier, SMALL_LEAVES[size : size + 1])
        assert not completed.keys() & stored.keys()  # each node is completed once
        stored |= completed
        assert merkle.frontier_root(size + 1, frontier) == merkle.root(SMALL_LEAVES[: size + 1])
    assert merkle.frontier_root(n, frontier) == expected
    rng = random.Random(n)
    for _ in range(3):  # in random batches
        size, batched_frontier, batched = 0, list[bytes](), dict[merkle.Node, bytes]()
        while size < n:
            step = rng.randint(1, n - size)
            batched_frontier, completed = merkle.append(size, batched_frontier, SMALL_LEAVES[size : size + step])
            batched |= completed
            size += step
        assert batched_frontier == frontier and batched == stored
    assert [stored[node] for node in merkle.frontier_nodes(n)] == frontier
    # every perfect node of the tree is stored, and each is the root over its leaves
    assert set(stored) == {(lv, i) for lv in range(n.bit_length()) for i in range(n >> lv)}
    for (level, index), value in stored.items():
        assert value == merkle.root(SMALL_LEAVES[index << level : (index + 1) << level])


def test_every_small_proof_verifies_and_every_change_fails() -> None:
    _, nodes = build(SMALL_LEAVES)
    for size in range(1, SMALL + 1):
        for index in range(size):
            check_inclusion(SMALL_LEAVES, nodes, index, size)
        for old in range(size + 1):
            check_consistency(SMALL_LEAVES, nodes, old, size)


def test_proofs_need_only_the_nodes_they_name() -> None:
    _, nodes = build(SMALL_LEAVES)
    for size in range(1, SMALL + 1):
        for index in range(size):
            needed = merkle.needed_for_inclusion(index, size)
            assert merkle.inclusion_proof(index, size, {k: nodes[k] for k in needed}) == merkle.inclusion_proof(
                index, size, nodes
            )
        for old in range(size + 1):
            needed = merkle.needed_for_consistency(old, size)
            assert merkle.consistency_proof(old, size, {k: nodes[k] for k in needed}) == merkle.consistency_proof(
                old, size, nodes
            )


def test_trivial_and_malformed_consistency() -> None:
    root = merkle.root(SMALL_LEAVES[:5])
    assert merkle.verify_consistency(5, 5, root, root, [])
    assert not merkle.verify_consistency(5, 5, root, OTHER_HASH, [])
    assert not merkle.verify_consistency(5, 5, root, root, [root])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, root, [])
    assert not merkle.verify_consistency(0, 5, OTHER_HASH, root, [])
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, root, [root])
    assert merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    assert not merkle.verify_consistency(6, 5, root, root, [])
    assert not merkle.verify_consistency(-1, 5, root, root, [])
    assert not merkle.verify_consistency(3, 5, root, root, None)  # type: ignore[arg-type]
    assert not merkle.verify_consistency(3, 5, root, root, root)  # type: ignore[arg-type]
    assert not merkle.verify_consistency(3, 5, root, root, [root, "00"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "args",
    [
        (OTHER_HASH, 0, 0, [], OTHER_HASH),  # index >= size
        (OTHER_HASH, 1, 1, [], OTHER_HASH),
        (OTHER_HASH, -1, 1, [], OTHER_HASH),
        (OTHER_HASH, True, 2, [OTHER_HASH], OTHER_HASH),  # a bool is not an index
        (OTHER_HASH[:31], 0, 1, [], OTHER_HASH[:31]),  # not 32 bytes
        ("not bytes", 0, 1, [], "not bytes"),
        (OTHER_HASH, 0, 1, [], None),
        (OTHER_HASH, 0, 2, [None], OTHER_HASH),
        (OTHER_HASH, 0, "2", [OTHER_HASH], OTHER_HASH),
        (OTHER_HASH, 0, 2, None, OTHER_HASH),  # not a list of hashes
        (OTHER_HASH, 0, 2, OTHER_HASH, OTHER_HASH),
        (OTHER_HASH, 0, 2, 7, OTHER_HASH),
    ],
)
def test_verify_inclusion_refuses_malformed_input(args: tuple[object, ...]) -> None:
    assert merkle.verify_inclusion(*args) is False  # type: ignore[arg-type]


def test_single_leaf_tree() -> None:
    leaf = merkle.leaf_hash(b"data")
    assert merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    assert not merkle.verify_inclusion(leaf, 0, 1, [], OTHER_HASH)
    assert not merkle.verify_inclusion(leaf, 0, 1, [leaf], leaf)


LARGE = 5000
LARGE_LEAVES = leaves(LARGE)
LARGE_FRONTIER, LARGE_NODES = build(LARGE_LEAVES)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_large_tree_proofs(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, LARGE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(0, size), label="old")
    root = merkle.range_hash(0, size, LARGE_NODES)
    old_root = merkle.range_hash(0, old, LARGE_NODES)
    proof = merkle.inclusion_proof(index, size, LARGE_NODES)
    assert merkle.verify_inclusion(LARGE_LEAVES[index], index, size, proof, root)
    for probe in inclusion_probes(LARGE_LEAVES[index], index, size, proof, root):
        assert not merkle.verify_inclusion(*probe)
    consistency = merkle.consistency_proof(old, size, LARGE_NODES)
    assert merkle.verify_consistency(old, size, old_root, root, consistency)
    if consistency:
        for c_probe in consistency_probes(old, size, old_root, root, consistency):
            assert not merkle.verify_consistency(*c_probe)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, LARGE))
def test_large_tree_roots_match_the_reference(size: int) -> None:
    frontier, _ = build(LARGE_LEAVES[:size])
    assert merkle.frontier_root(size, frontier) == merkle.root(LARGE_LEAVES[:size])
    assert merkle.range_hash(0, size, LARGE_NODES) == merkle.root(LARGE_LEAVES[:size])


def bound(n: int) -> int:
    return 2 * math.ceil(math.log2(n)) + 2 if n > 1 else 2


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_stored_reads_are_logarithmic(data: st.DataObject) -> None:
    size = data.draw(st.one_of(st.integers(1, 2**40), st.sampled_from([2**40, 2**40 - 1, 2**39 + 1, 3, 2])))
    index = data.draw(st.one_of(st.integers(0, size - 1), st.sampled_from([0, size - 1])))
    old = data.draw(st.one_of(st.integers(0, size), st.sampled_from([1, size - 1, size])))
    assert len(merkle.needed_for_inclusion(index, size)) <= bound(size) <= 100
    assert len(merkle.needed_for_consistency(old, size)) <= bound(size) <= 100
    # every node named lies inside the tree: storage has it once the tree has `size` leaves
    for level, node_index in merkle.needed_for_inclusion(index, size) | merkle.needed_for_consistency(old, size):
        assert (node_index + 1) << level <= size


def test_stored_reads_bound_is_tight_enough() -> None:
    worst = max(len(merkle.needed_for_inclusion(i, 2**12 - 1)) for i in range(0, 2**12 - 1, 7))
    assert worst <= bound(2**12 - 1)
    assert len(merkle.needed_for_inclusion(0, 2**40 - 1)) <= bound(2**40 - 1)
