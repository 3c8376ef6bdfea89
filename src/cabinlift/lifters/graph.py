"""Graph construction for the graph lifters, in one tested place.

Every matrix here is built once, on the CPU, from an undirected edge list; the models register the
results as buffers so that nothing graph-related is rebuilt in a forward pass (the official code
rebuilds Laplacians and Chebyshev stacks on every call, which costs more than the convolutions at
13 joints).

Conventions: matrices are ``(J, J)`` float32 tensors indexed ``[row, col]``; an edge ``(i, j)`` is
undirected and sets both ``[i, j]`` and ``[j, i]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cabinlift.errors import CabinliftError
from cabinlift.skeleton import (
    COCO13_EDGES,
    COCO13_FLIP_PAIRS,
    COCO13_NOSE_SHOULDER_EDGES,
    NUM_JOINTS,
)

Edges = Sequence[tuple[int, int]]

#: The COCO-13 graphs that SemGCN's and GraFormer's ``graph`` hyper-parameter names: ``coco15``
#: is COCO's skeleton restricted to the 13 joints (the official code's graph for these joints, 43
#: SemGCN mask entries); ``coco17`` adds nose-left shoulder and nose-right shoulder, the graph
#: the paper authors' code builds (47 mask entries).
GRAPHS: dict[str, tuple[tuple[int, int], ...]] = {
    "coco15": COCO13_EDGES,
    "coco17": (*COCO13_EDGES, *COCO13_NOSE_SHOULDER_EDGES),
}
DEFAULT_GRAPH = "coco15"

#: Joint groups of SemGCN's non-local blocks (``non_local_groups``), in SemGCN's ``nodes_group``
#: form. ``flip_pairs``: the six left/right pairs, then the nose. ``authors``: the groups of the
#: paper authors' code; read the way SemGCN reads any grouping (:func:`nonlocal_order`), its
#: singleton second group shifts every later pair, so only (1, 3) is pooled as a pair and the
#: right hip (12) drops out of keys and values.
NONLOCAL_GROUPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "flip_pairs": (*COCO13_FLIP_PAIRS, (0,)),
    "authors": ((1, 3), (0,), (2, 4), (5, 6), (7, 9), (8, 10), (11, 12)),
}

#: GraphMLP's ``coco_upperbody`` layout as written in the paper authors' code
#: (gentlerainsky/tuwien_thesis_3d_pose_estimation): 0-indexed COCO-13 neighbour pairs, left/right
#: pairs and each joint's distance to the centre joint, the nose. That code's graph builder
#: subtracts one from every index, as it must for the 1-indexed Human3.6M layout next to it, so
#: the graph it trains is :func:`shifted_down` of these pairs (see :func:`authors_shifted_partitions`).
AUTHORS_UPPERBODY_NEIGHBOURS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (2, 4), (1, 3), (0, 5), (0, 6), (5, 7), (6, 8), (7, 9), (8, 10), (5, 6),
    (5, 11), (6, 12), (11, 12),
)
AUTHORS_UPPERBODY_SYM_PAIRS: tuple[tuple[int, int], ...] = (
    (3, 4), (1, 2), (5, 6), (7, 8), (9, 10), (11, 12),
)
AUTHORS_UPPERBODY_DIST_CENTER: tuple[int, ...] = (0, 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 2, 2)

#: Hop distance of each COCO-13 joint to a virtual neck joined to the nose and both shoulders,
#: measured on the 12-edge COCO-13 tree (parents [-1,0,0,1,2,0,0,5,6,7,8,5,6]). GraphMLP's
#: 'spatial' partitioning needs a distance to a centre joint; COCO has no neck, and distances on
#: the cyclic COCO face graph would put eye-eye/eye-ear neighbours at equal distance, where the
#: official partitioning silently drops them.
COCO13_DIST_CENTER: tuple[int, ...] = (1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 2, 2)


def check_edges(num_joints: int, edges: Edges) -> list[tuple[int, int]]:
    """Validate an edge list (indices in range, no self-edges) and return it as int pairs."""
    out = []
    for edge in edges:
        i, j = (int(v) for v in edge)
        if not (0 <= i < num_joints and 0 <= j < num_joints) or i == j:
            raise CabinliftError(f"bad graph edge {edge!r} for {num_joints} joints")
        out.append((i, j))
    return out


def default_edges(num_joints: int, edges: Edges | None) -> list[tuple[int, int]]:
    """The edge list a graph lifter uses: ``edges`` if given, else COCO-13's for 13 joints."""
    if edges is None:
        if num_joints != NUM_JOINTS:
            raise CabinliftError(
                f"a graph lifter with num_joints={num_joints} needs an explicit edge list "
                f"(the default skeleton is COCO-13 with {NUM_JOINTS} joints)"
            )
        edges = COCO13_EDGES
    return check_edges(num_joints, edges)


def graph_edges(num_joints: int, graph: str, edges: Edges | None) -> list[tuple[int, int]]:
    """The edge list of a graph lifter with ``graph`` (a key of :data:`GRAPHS`) and an optional
    explicit ``edges``; the default graph with ``edges`` is :func:`default_edges`."""
    if graph not in GRAPHS:
        raise CabinliftError(f"unknown graph {graph!r}: expected one of {', '.join(GRAPHS)}")
    if graph == DEFAULT_GRAPH:
        return default_edges(num_joints, edges)
    if edges is not None:
        raise CabinliftError(f"graph={graph!r} and an explicit edge list exclude each other")
    if num_joints != NUM_JOINTS:
        raise CabinliftError(
            f"graph={graph!r} is a COCO-13 graph, but num_joints is {num_joints}"
        )
    return check_edges(num_joints, GRAPHS[graph])


def nonlocal_order(num_joints: int, groups: Sequence[Sequence[int]]) -> tuple[list[int], int]:
    """Joint order and pooling window of SemGCN's non-local blocks for ``groups``, computed as
    SemGCN computes them: the groups concatenated, and the window taken from the first group's
    size (so groups of other sizes are not pooled as groups)."""
    order = [int(j) for group in groups for j in group]
    if sorted(order) != list(range(num_joints)):
        raise CabinliftError(
            f"non-local groups {[list(g) for g in groups]} must hold each of the {num_joints} "
            f"joints once"
        )
    size = len(groups[0])
    if size < 2:
        raise CabinliftError(f"the first non-local group must have >= 2 joints, got {size}")
    return order, size


def adjacency(num_joints: int, edges: Edges, self_loops: bool = True) -> torch.Tensor:
    """Binary symmetric adjacency, with the identity added when ``self_loops``."""
    a = torch.zeros(num_joints, num_joints)
    for i, j in check_edges(num_joints, edges):
        a[i, j] = 1.0
        a[j, i] = 1.0
    if self_loops:
        a += torch.eye(num_joints)
    return a


def row_normalize(a: torch.Tensor) -> torch.Tensor:
    """Divide every row by its sum (rows summing to 0 stay 0), as SemGCN's ``normalize``."""
    s = a.sum(dim=1, keepdim=True)
    return torch.where(s > 0, a / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(a))


def normalized_adjacency(num_joints: int, edges: Edges) -> torch.Tensor:
    """Row-normalised ``A + I``: SemGCN's/GraFormer's ``adj_mx_from_edges``."""
    return row_normalize(adjacency(num_joints, edges, self_loops=True))


def semgcn_mask(num_joints: int, edges: Edges) -> torch.Tensor:
    """Bool mask of the entries that carry a learnable SemGCN edge logit (``A + I > 0``)."""
    return normalized_adjacency(num_joints, edges) > 0


def cheb_laplacian(adj: torch.Tensor) -> torch.Tensor:
    """GraFormer's ``L = I - D^{-1/2} adj D^{-1/2}`` with ``D = diag(rowsum(adj))``.

    GraFormer passes the row-normalised ``A + I`` here, so ``D = I`` and ``L = I - adj``.
    """
    d = adj.sum(dim=1).pow(-0.5)
    return torch.eye(adj.shape[0], dtype=adj.dtype) - d[:, None] * adj * d[None, :]


def cheb_basis(laplacian: torch.Tensor, order: int = 2) -> torch.Tensor:
    """Chebyshev stack ``(order + 1, J, J)``: T0 = I, T1 = L, Tk = 2 L T(k-1) - T(k-2)."""
    if order < 0:
        raise CabinliftError(f"Chebyshev order must be >= 0, got {order}")
    n = laplacian.shape[0]
    ts = [torch.eye(n, dtype=laplacian.dtype)]
    if order >= 1:
        ts.append(laplacian.clone())
    for _ in range(2, order + 1):
        ts.append(2.0 * laplacian @ ts[-1] - ts[-2])
    return torch.stack(ts)


def spatial_partitions(
    num_joints: int, edges: Edges, sym_pairs: Edges, dist_center: Sequence[int]
) -> torch.Tensor:
    """GraphMLP's ST-GCN-style 'spatial' partitions ``(4, J, J)``: root, centripetal,
    centrifugal, symmetric.

    The 1-hop graph holds the edges, the left/right ``sym_pairs`` and self-loops; it is
    column-normalised (``normalize_digraph``: entry ``[j, i]`` divided by the degree of ``i``).
    Entry ``[j, i]`` of a neighbour pair goes to *symmetric* if the pair is a left/right pair,
    else to *centripetal* if ``dist_center[j] > dist_center[i]``, to *centrifugal* if smaller;
    neighbours at equal distance are dropped, as in the official code. The diagonal is *root*.
    """
    if len(dist_center) != num_joints:
        raise CabinliftError(f"dist_center has {len(dist_center)} entries, expected {num_joints}")
    sym = {frozenset(p) for p in check_edges(num_joints, sym_pairs)}
    a = adjacency(num_joints, [*check_edges(num_joints, edges), *[tuple(p) for p in sym]])
    norm = a / a.sum(dim=0, keepdim=True)  # a is symmetric with self-loops: no zero column
    parts = torch.zeros(4, num_joints, num_joints)
    for j in range(num_joints):
        for i in range(num_joints):
            if a[j, i] == 0:
                continue
            if i == j:
                k = 0
            elif frozenset((i, j)) in sym:
                k = 3
            elif dist_center[j] > dist_center[i]:
                k = 1
            elif dist_center[j] < dist_center[i]:
                k = 2
            else:
                continue
            parts[k, j, i] = norm[j, i]
    return parts


def coco13_partitions() -> torch.Tensor:
    """GraphMLP's four partitions for COCO-13: 15 edges + 6 flip pairs, tree distances."""
    return spatial_partitions(NUM_JOINTS, COCO13_EDGES, COCO13_FLIP_PAIRS, COCO13_DIST_CENTER)


def shifted_down(edges: Edges, num_joints: int) -> list[tuple[int, int]]:
    """Every joint index minus one, -1 wrapping to the last joint (numpy's negative indexing):
    what a graph builder written for 1-indexed layouts makes of a 0-indexed one."""
    return [((i - 1) % num_joints, (j - 1) % num_joints) for i, j in edges]


def authors_shifted_partitions() -> torch.Tensor:
    """GraphMLP's four partitions as the paper authors' code builds them for COCO-13.

    A defect of that code, offered only to reproduce its numbers: the 0-indexed
    ``coco_upperbody`` pairs are shifted down by one joint (:func:`shifted_down`), while the
    nose-centred distances are not. The 1-hop graph in effect has 18 edges, among them
    nose-right hip (0, 12) and left eye-right hip (1, 12); the left/right pairs in effect are
    (2, 3), (0, 1), (4, 5), (6, 7), (8, 9), (10, 11). Left ear-right hip (4, 12) joins joints at
    equal distance, so it lands in no partition but still counts in the degree normalisation.
    Non-zeros: 13 / 11 / 11 / 12 (root / centripetal / centrifugal / symmetric), against
    13 / 12 / 12 / 12 for :func:`coco13_partitions`.
    """
    return spatial_partitions(
        NUM_JOINTS,
        shifted_down(AUTHORS_UPPERBODY_NEIGHBOURS, NUM_JOINTS),
        shifted_down(AUTHORS_UPPERBODY_SYM_PAIRS, NUM_JOINTS),
        AUTHORS_UPPERBODY_DIST_CENTER,
    )
