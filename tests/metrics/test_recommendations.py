import numpy as np
import pytest
import scipy.sparse as sp

from embvar.errors import DataError, ShapeMismatchError
from embvar.metrics import (
    churn_top1,
    mean_abs_difference,
    prediction_disagreement,
    relative_frobenius,
    topk_items,
    topk_overlap,
)


@pytest.fixture
def factors(rng):
    U = rng.normal(size=(60, 6))
    V = rng.normal(size=(80, 6))
    item_bias = rng.normal(size=80)
    return U, V, item_bias


def invertible(rng, dim):
    return rng.normal(size=(dim, dim)) + 3.0 * np.eye(dim)


def test_function_metrics_invariant_to_invertible_map(rng, factors):
    U, V, bias = factors
    A = invertible(rng, 6)
    U2, V2 = U @ A, V @ np.linalg.inv(A).T
    seen = (rng.integers(0, 60, 200), rng.integers(0, 80, 200))

    assert (
        topk_overlap(
            U, V, U2, V2, k=10, exclude=seen, item_bias1=bias, item_bias2=bias
        ).min()
        == 1.0
    )
    assert churn_top1(U, V, U2, V2, item_bias1=bias, item_bias2=bias) == 0.0
    assert prediction_disagreement(U, V, U2, V2) == pytest.approx(0.0, abs=1e-9)
    # ...while the parameters themselves moved a lot.
    assert relative_frobenius(U, U2) > 0.5
    assert mean_abs_difference(V, V2) > 0.1


def test_topk_items_by_hand():
    U = np.array([[1.0, 0.0]])
    V = np.array([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert topk_items(U, V, 2).tolist() == [[0, 1]]
    # Seen item 0 is skipped; a bias lifts item 3 to the top.
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0]]))
    bias = np.array([0.0, 0.0, 0.0, 10.0])
    assert topk_items(U, V, 2, exclude=seen, item_bias=bias).tolist() == [[3, 1]]


def test_topk_items_exclude_as_index_arrays_matches_sparse(rng, factors):
    U, V, _ = factors
    users, items = rng.integers(0, 60, 300), rng.integers(0, 80, 300)
    dense = sp.csr_matrix((np.ones(300), (users, items)), shape=(60, 80))
    by_arrays = topk_items(U, V, 5, exclude=(users, items))
    assert np.array_equal(by_arrays, topk_items(U, V, 5, exclude=dense))
    assert not dense[np.arange(60)[:, None], by_arrays].toarray().any()


def test_topk_overlap_symmetric_and_in_range(rng, factors):
    U, V, _ = factors
    U2, V2 = rng.normal(size=U.shape), rng.normal(size=V.shape)
    ab = topk_overlap(U, V, U2, V2, k=5)
    assert np.array_equal(ab, topk_overlap(U2, V2, U, V, k=5))
    assert ab.shape == (60,) and 0.0 <= ab.min() and ab.max() <= 1.0
    assert ab.mean() < 0.5


def test_churn_top1_by_hand():
    V = np.eye(2)
    U1 = np.array([[1.0, 0.0], [1.0, 0.0]])
    U2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert churn_top1(U1, V, U2, V) == 0.5


def test_prediction_disagreement_by_hand():
    U = np.array([[1.0, 0.0], [0.0, 2.0]])
    V = np.eye(2)
    pairs = (np.array([0, 1]), np.array([0, 1]))
    # Run 2 adds a user bias of 1 to user 1 only: |0| and |1| -> mean 0.5.
    value = prediction_disagreement(U, V, U, V, pairs, user_bias2=np.array([0.0, 1.0]))
    assert value == pytest.approx(0.5)


def test_prediction_disagreement_sample_is_seeded(rng, factors):
    U, V, _ = factors
    U2 = U + rng.normal(scale=0.1, size=U.shape)
    a = prediction_disagreement(U, V, U2, V, n_pairs=500, seed=3)
    assert a == prediction_disagreement(U, V, U2, V, n_pairs=500, seed=3)
    assert a != prediction_disagreement(U, V, U2, V, n_pairs=500, seed=4)


def test_topk_items_too_few_unseen_items_raises():
    seen = sp.csr_matrix(np.array([[1, 1, 0]]))
    with pytest.raises(DataError, match="^k must be at most the number of unseen"):
        topk_items(np.ones((1, 2)), np.ones((3, 2)), 2, exclude=seen)


def test_topk_items_exclude_wrong_shape_raises():
    with pytest.raises(ShapeMismatchError, match=r"^exclude must have shape"):
        topk_items(np.ones((2, 2)), np.ones((3, 2)), 1, exclude=sp.eye(2, format="csr"))


def test_topk_items_exclude_wrong_type_raises():
    with pytest.raises(DataError, match="^exclude must be a SciPy sparse matrix"):
        topk_items(np.ones((2, 2)), np.ones((3, 2)), 1, exclude=[[0, 1]])


def test_prediction_disagreement_pair_out_of_range_raises():
    U, V = np.ones((2, 2)), np.ones((3, 2))
    with pytest.raises(
        DataError, match=r"^pairs items must be row indices in \[0, 2\]"
    ):
        prediction_disagreement(U, V, U, V, (np.array([0]), np.array([3])))


def test_prediction_disagreement_bias_shape_raises():
    U, V = np.ones((2, 2)), np.ones((3, 2))
    with pytest.raises(ShapeMismatchError, match=r"^item_bias1 must have one value"):
        prediction_disagreement(U, V, U, V, item_bias1=np.ones(2))


def test_prediction_disagreement_factor_dims_raise():
    with pytest.raises(ShapeMismatchError, match="^U1 and V1 must have the same"):
        prediction_disagreement(
            np.ones((2, 2)), np.ones((3, 3)), np.ones((2, 2)), np.ones((3, 2))
        )
