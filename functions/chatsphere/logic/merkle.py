"""The ledger's Merkle tree, as RFC 9162 §2.1 defines it: pure functions, bytes in and out, SHA-256.

A leaf hash is SHA-256(0x00 || entry), an interior node SHA-256(0x01 || left || right), the empty tree's root
SHA-256(""). The tree of n leaves splits at k, the largest power of two below n (§2.1.1).

Storage keeps one hash per *perfect node* `(level, index)`: the complete subtree over the leaves
`[index * 2**level, (index + 1) * 2**level)`; level 0 is a leaf hash. Every hash a proof needs is a subtree of the
RFC's split, and each of those is a short run of perfect nodes (`range_nodes`), so a proof is computed from at most
2·⌈log2 n⌉ + 2 stored nodes (`needed_for_inclusion`, `needed_for_consistency`): one batch read for n up to 2**40.

Writing: `append` takes the *frontier* (the hashes of `frontier_nodes(size)`, the perfect nodes of size's binary
decomposition, largest first) and new leaf hashes, and gives the next frontier and every perfect node the new
leaves complete, to be stored. `frontier_root` is the tree head's root from the frontier alone.

Reading: `inclusion_ranges` and `consistency_ranges` name the subtrees whose hashes form RFC 9162's PATH
(§2.1.3.1) and PROOF (§2.1.4.1); `inclusion_proof` and `consistency_proof` compute them from stored nodes.

Verifying: `verify_inclusion` (§2.1.3.2) and `verify_consistency` (§2.1.4.2) follow the RFC's algorithms step by
step; they return False, never raise, on any malformed input (a hash that is not 32 bytes, index ≥ size, old > new,
a proof too short or too long). `verify_consistency` also settles the two cases the RFC's algorithm leaves out:
old == new (an empty proof, equal roots) and old == 0 (an empty proof, old_root the empty tree's root).

The builders (`range_nodes`, `inclusion_ranges`, ...) raise ValueError for arguments outside their domain and
KeyError (the missing node) when a needed node is not in the mapping they are given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

Node = tuple[int, int]  # (level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of one leaf, SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node, SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes: the reference implementation, the RFC's recursive definition word for word."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root(leaf_hashes[:k]), root(leaf_hashes[k:]))


def frontier_nodes(size: int) -> list[Node]:
    """The perfect nodes of size's binary decomposition, left to right (largest first): the tree's right edge."""
    if size < 0:
        raise ValueError("size must not be negative")
    nodes: list[Node] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def _check_frontier(size: int, frontier: Sequence[bytes]) -> None:
    if size < 0:
        raise ValueError("size must not be negative")
    if len(frontier) != size.bit_count():
        raise ValueError(f"a frontier of size {size} has {size.bit_count()} hashes, not {len(frontier)}")


def append(size: int, frontier: list[bytes], leaf_hashes: Sequence[bytes]) -> tuple[list[bytes], dict[Node, bytes]]:
    """Append leaf hashes to the tree of `size` leaves whose frontier is `frontier`.

    Returns the frontier of the grown tree and every perfect node the new leaves complete (the leaves themselves,
    at level 0, included), which is what storage keeps. The given frontier list is not changed."""
    _check_frontier(size, frontier)
    edge = list(frontier)
    completed: dict[Node, bytes] = {}
    for leaf in leaf_hashes:
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        level, index, current = 0, size, leaf
        completed[(level, index)] = current
        while index & 1:  # a right child: it completes its parent with the left sibling on the edge
            current = node_hash(edge.pop(), current)
            level, index = level + 1, index >> 1
            completed[(level, index)] = current
        edge.append(current)
        size += 1
    return edge, completed


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of consecutive subtrees given largest first, as RFC 9162's split nests them: folded right to left."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def frontier_root(size: int, frontier: list[bytes]) -> bytes:
    """The root of the tree of `size` leaves from its frontier alone; EMPTY_ROOT for the empty tree."""
    _check_frontier(size, frontier)
    return _fold(frontier) if frontier else EMPTY_ROOT


def range_nodes(start: int, end: int) -> list[Node]:
    """The perfect nodes covering leaves [start, end), left to right, as RFC 9162's split of that range makes them.

    The range must be one whose hash perfect nodes give: each left part of the split (a power of two) starts on a
    multiple of its size, as every subtree of the RFC's split of [0, n) does. Otherwise ValueError."""
    if not 0 <= start <= end:
        raise ValueError("a range needs 0 <= start <= end")
    nodes: list[Node] = []
    while start < end:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:  # itself a perfect node
            level = n.bit_length() - 1
            nodes.append((level, start >> level))
            break
        k = _split(n)
        if start % k:
            raise ValueError(f"leaves [{start}, {end}) are not a subtree that perfect nodes cover")
        level = k.bit_length() - 1
        nodes.append((level, start >> level))
        start += k
    return nodes


def range_hash(start: int, end: int, nodes: Mapping[Node, bytes]) -> bytes:
    """MTH of leaves [start, end) from the perfect nodes of `range_nodes(start, end)`; EMPTY_ROOT for no leaves."""
    covering = range_nodes(start, end)
    if not covering:
        return EMPTY_ROOT
    return _fold([nodes[node] for node in covering])


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes form the audit path of leaf `index` in the tree of `size` leaves (RFC 9162
    §2.1.3.1 PATH), in proof order: from the leaf's sibling up to the root's other child."""
    if not 0 <= index < size:
        raise ValueError("an inclusion proof needs 0 <= index < size")
    siblings: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo += k
    siblings.reverse()
    return siblings


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes form the consistency proof from size `old` to size `new` (RFC 9162 §2.1.4.1
    PROOF and SUBPROOF), in proof order. Empty when old is 0 or old == new."""
    if not 0 <= old <= new:
        raise ValueError("a consistency proof needs 0 <= old <= new")
    if old in (0, new):
        return []
    siblings: list[tuple[int, int]] = []
    lo, hi = 0, new
    whole_old_tree = True  # SUBPROOF's b: the subtree in hand is still the whole old tree
    while old != hi:
        k = _split(hi - lo)
        if old - lo <= k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    siblings.reverse()
    return siblings if whole_old_tree else [(lo, hi), *siblings]


def _covering(ranges: Sequence[tuple[int, int]]) -> set[Node]:
    return {node for start, end in ranges for node in range_nodes(start, end)}


def needed_for_inclusion(index: int, size: int) -> set[Node]:
    """The stored perfect nodes an inclusion proof of leaf `index` in the tree of `size` leaves is computed from:
    at most 2·⌈log2 size⌉ (below the first left turn of the path every sibling is one perfect node)."""
    return _covering(inclusion_ranges(index, size))


def needed_for_consistency(old: int, new: int) -> set[Node]:
    """The stored perfect nodes the consistency proof from `old` to `new` is computed from: at most
    2·⌈log2 new⌉ + 1."""
    return _covering(consistency_ranges(old, new))


def inclusion_proof(index: int, size: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves, from the stored perfect nodes `nodes` (which
    must hold `needed_for_inclusion(index, size)`)."""
    return [range_hash(start, end, nodes) for start, end in inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """The consistency proof from size `old` to size `new`, from the stored perfect nodes `nodes` (which must hold
    `needed_for_consistency(old, new)`)."""
    return [range_hash(start, end, nodes) for start, end in consistency_ranges(old, new)]


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _are_hashes(*hashes: object) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def _is_path(proof: object) -> bool:
    return isinstance(proof, Sequence) and not isinstance(proof, bytes | str) and _are_hashes(*proof)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` shows the leaf hash `leaf` at `index` in the tree of `size` leaves whose root is `root`:
    RFC 9162 §2.1.3.2, step by step. False on any malformed input."""
    if not (_is_size(index) and _is_size(size) and _are_hashes(leaf, root) and _is_path(proof)):
        return False
    if index >= size:  # step 1
        return False
    fn, sn = index, size - 1  # step 2
    r = leaf  # step 3
    for p in proof:  # step 4
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:  # 4.2: until LSB(fn) is set or fn is 0
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root  # step 5


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows that the tree of `new` leaves with root `new_root` extends the tree of `old` leaves
    with root `old_root`: RFC 9162 §2.1.4.2, step by step, for 0 < old < new. old == new holds with an empty proof
    and equal roots, old == 0 with an empty proof and old_root the empty tree's. False on any malformed input."""
    if not (_is_size(old) and _is_size(new) and _are_hashes(old_root, new_root) and _is_path(proof)) or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof and old_root == EMPTY_ROOT
    return _verify_subproof(old, new, old_root, new_root, list(proof))


def _verify_subproof(first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2's steps 1 to 7, for 0 < first < second and well-formed hashes."""
    if not path:  # step 1
        return False
    if first & (first - 1) == 0:  # step 2
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:  # 6.3: until LSB(fn) is set or fn is 0
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_hash and sr == second_hash and sn == 0  # step 7
