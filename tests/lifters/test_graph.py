"""Graph construction shared by the graph lifters (cabinlift.lifters.graph)."""

from __future__ import annotations

import math

import pytest
import torch

from cabinlift.errors import CabinliftError
from cabinlift.lifters import graph
from cabinlift.skeleton import COCO13_EDGES, COCO13_FLIP_PAIRS, L_SHOULDER, R_SHOULDER

PATH3 = [(0, 1), (1, 2)]


def test_adjacency_is_symmetric_with_self_loops() -> None:
    a = graph.adjacency(13, COCO13_EDGES)
    assert torch.equal(a, a.T)
    assert torch.equal(a.diagonal(), torch.ones(13))
    assert int(a.sum()) == 13 + 2 * len(COCO13_EDGES) == 43
    assert a[5, 11] == a[11, 5] == 1 and a[0, 12] == 0
    no_loops = graph.adjacency(13, COCO13_EDGES, self_loops=False)
    assert torch.equal(no_loops + torch.eye(13), a)


def test_edge_direction_does_not_matter() -> None:
    reversed_edges = [(j, i) for i, j in COCO13_EDGES]
    assert torch.equal(graph.adjacency(13, reversed_edges), graph.adjacency(13, COCO13_EDGES))


def test_row_normalisation() -> None:
    adj = graph.normalized_adjacency(13, COCO13_EDGES)
    assert torch.allclose(adj.sum(dim=1), torch.ones(13))
    # Nose: itself, both eyes -> 1/3 each.
    assert torch.allclose(adj[0, [0, 1, 2]], torch.full((3,), 1 / 3))
    z = graph.row_normalize(torch.zeros(2, 2))
    assert torch.equal(z, torch.zeros(2, 2))  # empty rows stay 0, no NaN


def test_semgcn_mask_has_43_entries() -> None:
    mask = graph.semgcn_mask(13, COCO13_EDGES)
    assert mask.dtype == torch.bool and int(mask.sum()) == 43
    assert torch.equal(mask, graph.adjacency(13, COCO13_EDGES) > 0)


def test_chebyshev_basis_on_3_joint_path_by_hand() -> None:
    # Row-normalised A + I of the path 0-1-2 has row sums 1, so D = I and L = I - A_hat.
    a_hat = graph.normalized_adjacency(3, PATH3)
    expected_a = torch.tensor([[1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1 / 2, 1 / 2]])
    assert torch.allclose(a_hat, expected_a)
    lap = graph.cheb_laplacian(a_hat)
    expected_l = torch.tensor([[1 / 2, -1 / 2, 0], [-1 / 3, 2 / 3, -1 / 3], [0, -1 / 2, 1 / 2]])
    assert torch.allclose(lap, expected_l, atol=1e-6)
    t = graph.cheb_basis(lap, order=2)
    assert t.shape == (3, 3, 3)
    assert torch.equal(t[0], torch.eye(3))
    assert torch.allclose(t[1], expected_l, atol=1e-6)
    # 2 L^2 - I worked out on paper.
    expected_t2 = torch.tensor(
        [[-1 / 6, -7 / 6, 1 / 3], [-7 / 9, 5 / 9, -7 / 9], [1 / 3, -7 / 6, -1 / 6]]
    )
    assert torch.allclose(t[2], expected_t2, atol=1e-6)


def test_chebyshev_basis_higher_order_recursion() -> None:
    lap = graph.cheb_laplacian(graph.normalized_adjacency(4, [(0, 1), (1, 2), (2, 3)]))
    t = graph.cheb_basis(lap, order=3)
    assert torch.allclose(t[2], 2 * lap @ lap - torch.eye(4), atol=1e-6)
    assert torch.allclose(t[3], 2 * lap @ t[2] - lap, atol=1e-6)
    assert graph.cheb_basis(lap, order=0).shape == (1, 4, 4)


def test_laplacian_symmetric_normalisation_when_degrees_differ() -> None:
    a = graph.adjacency(3, PATH3)  # binary A + I: degrees 2, 3, 2
    s = 1 / math.sqrt(6)
    expected = torch.eye(3) - torch.tensor([[1 / 2, s, 0], [s, 1 / 3, s], [0, s, 1 / 2]])
    assert torch.allclose(graph.cheb_laplacian(a), expected, atol=1e-6)


def _tree_distances(parents: list[int], centre_neighbours: list[int]) -> list[int]:
    """Hop distance of every joint of the tree ``parents`` to a virtual centre joint linked to
    ``centre_neighbours`` (breadth-first)."""
    nbrs: list[list[int]] = [[] for _ in parents]
    for child, parent in enumerate(parents):
        if parent >= 0:
            nbrs[child].append(parent)
            nbrs[parent].append(child)
    dist = [-1] * len(parents)
    queue = list(centre_neighbours)
    for j in queue:
        dist[j] = 1
    for u in queue:  # the queue grows while it is walked: breadth-first order
        for v in nbrs[u]:
            if dist[v] < 0:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


def test_coco13_dist_center_is_the_tree_distance_to_a_virtual_neck() -> None:
    # the 12-edge COCO-13 tree: eyes on the nose, ears on the eyes, shoulders on the nose, ...
    parents = [-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6]
    dist = _tree_distances(parents, [0, L_SHOULDER, R_SHOULDER])
    assert tuple(dist) == graph.COCO13_DIST_CENTER == (1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 2, 2)


def test_graphmlp_partitions_for_coco13() -> None:
    parts = graph.coco13_partitions()
    assert parts.shape == (4, 13, 13)
    assert [int((p != 0).sum()) for p in parts] == [13, 12, 12, 12]
    root, centripetal, centrifugal, sym = parts
    assert torch.equal(root, torch.diag(root.diagonal()))
    assert torch.equal(sym != 0, sym.T != 0)
    for i, j in COCO13_FLIP_PAIRS:
        assert sym[i, j] > 0 and sym[j, i] > 0
    dist = graph.COCO13_DIST_CENTER
    for j, i in (centripetal != 0).nonzero().tolist():
        assert dist[j] > dist[i]
    for j, i in (centrifugal != 0).nonzero().tolist():
        assert dist[j] < dist[i]
    assert torch.equal(centripetal != 0, centrifugal.T != 0)
    # Every 1-hop neighbour lands in some partition (no equal-distance neighbour is dropped) and
    # the values are the column-normalised adjacency with the flip-pair edges added.
    full = graph.adjacency(13, [*COCO13_EDGES, *COCO13_FLIP_PAIRS])
    assert torch.allclose(parts.sum(0), full / full.sum(dim=0, keepdim=True))


def test_partitions_drop_equal_distance_neighbours_like_the_official_code() -> None:
    # Path 0-1-2 with a centre at joint 1 and distance 1 for both ends; an extra edge 0-2
    # joins two joints at equal distance: it must be dropped.
    parts = graph.spatial_partitions(3, [(0, 1), (1, 2), (0, 2)], [], [1, 0, 1])
    assert [int((p != 0).sum()) for p in parts] == [3, 2, 2, 0]
    assert parts[:, 0, 2].abs().sum() == 0 and parts[:, 2, 0].abs().sum() == 0


def test_edge_validation() -> None:
    with pytest.raises(CabinliftError):
        graph.adjacency(3, [(0, 3)])
    with pytest.raises(CabinliftError):
        graph.adjacency(3, [(1, 1)])
    with pytest.raises(CabinliftError):
        graph.default_edges(16, None)
    assert graph.default_edges(13, None) == list(COCO13_EDGES)


def test_named_graphs() -> None:
    assert graph.graph_edges(13, "coco15", None) == list(COCO13_EDGES)
    coco17 = graph.graph_edges(13, "coco17", None)
    assert len(coco17) == 17 and set(coco17) - set(COCO13_EDGES) == {(0, 5), (0, 6)}
    assert int(graph.semgcn_mask(13, coco17).sum()) == 47
    # an explicit edge list goes with the default graph name only
    assert graph.graph_edges(3, "coco15", PATH3) == PATH3
    with pytest.raises(CabinliftError, match="exclude each other"):
        graph.graph_edges(13, "coco17", PATH3)
    with pytest.raises(CabinliftError, match="unknown graph"):
        graph.graph_edges(13, "coco13", None)


def test_choice_annotations_name_the_graph_tables() -> None:
    """The Literal of each constructor argument (what params.yaml is checked against) lists
    exactly the names the graph tables define."""
    import typing

    from cabinlift.lifters import lifter_class

    def choices(model: str, arg: str) -> tuple[str, ...]:
        return typing.get_args(typing.get_type_hints(lifter_class(model).__init__)[arg])

    assert choices("semgcn", "graph") == choices("graformer", "graph") == tuple(graph.GRAPHS)
    assert choices("semgcn", "non_local_groups") == tuple(graph.NONLOCAL_GROUPS)
    assert choices("graphmlp", "graph_layout") == ("coco13", "authors_shifted")


def test_nonlocal_order_as_semgcn_computes_it() -> None:
    assert graph.nonlocal_order(5, [[3, 4], [0, 1, 2]]) == ([3, 4, 0, 1, 2], 2)
    assert graph.nonlocal_order(13, graph.NONLOCAL_GROUPS["authors"]) == (
        [1, 3, 0, 2, 4, 5, 6, 7, 9, 8, 10, 11, 12], 2)
    with pytest.raises(CabinliftError, match="each of the 4 joints once"):
        graph.nonlocal_order(4, [[0, 1], [1, 2]])
    with pytest.raises(CabinliftError, match=">= 2 joints"):
        graph.nonlocal_order(3, [[0], [1, 2]])


def test_shifted_down_wraps_minus_one_to_the_last_joint() -> None:
    assert graph.shifted_down([(0, 1), (5, 12), (11, 12)], 13) == [(12, 0), (4, 11), (10, 11)]
