"""Graph construction for the graph lifters, in one tested place.

Every matrix here is built once, on the CPU, from an undirected edge list; the models register the
results as buffers so that nothing graph-related is rebuilt in a forward pass (the official code
rebuilds Laplacians and Chebyshev stacks on every call, which costs more than the convolutions at
13 joints).

Conventions: matrices are ``(J, J)`` float32 tensors indexed ``[row, col]``; an edge ``(i, j)`` is
undirected and sets both ``[i, j]`` and ``[j, i]``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch

from cabinlift.errors import CabinliftError
from cabinlift.skeleton import COCO13_EDGES, COCO13_FLIP_PAIRS, NUM_JOINTS

Edges = Sequence[tuple[int, int]]

#: Hop distance of each COCO-13 joint to a virtual neck joined to the nose and both shoulders,
#: measured on the 12-edge COCO-13 tree (parents [-1,0,0,1,2,0,0,5,6,7,8,5,6]). GraphMLP's
#: 'spatial' partitioning needs a distance to a centre joint; COCO has no neck, and distances on
#: the cyclic COCO face graph would put eye-eye/eye-ear neighbours at equal distance, where the
#: official partitioning silently drops them (see lifters.md §4).
COCO13_DIST_CENTER: tuple[int, ...] = (1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 2, 2)

#: Parents of the COCO-13 tree from which :data:`COCO13_DIST_CENTER` is measured.
COCO13_TREE_PARENTS: tuple[int, ...] = (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6)


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


def tree_dist_to_center(parents: Sequence[int], center_neighbours: Sequence[int]) -> list[int]:
    """Hop distance of every joint to a virtual centre joint linked to ``center_neighbours``,
    measured on the tree given by ``parents`` (-1 for the root)."""
    n = len(parents)
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for child, parent in enumerate(parents):
        if parent >= 0:
            nbrs[child].append(parent)
            nbrs[parent].append(child)
    dist = [-1] * n
    queue: deque[int] = deque()
    for j in center_neighbours:
        dist[j] = 1
        queue.append(j)
    while queue:
        u = queue.popleft()
        for v in nbrs[u]:
            if dist[v] < 0:
                dist[v] = dist[u] + 1
                queue.append(v)
    if min(dist) < 0:
        raise CabinliftError("the tree does not reach every joint from the centre")
    return dist


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
