"""The nnet adapter: an R nnet fit's ``wts`` through flatten / unflatten / restore."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import helpers
from helpers import LayoutError
from helpers.nnet import NNet, class_ind, nnet

# name -> (number of classes, nnet settings)
NETWORKS = {
    "default": (2, {"size": 5}),
    "skip": (2, {"size": 4, "skip": True}),
    "softmax_3_classes": (3, {"size": 3, "softmax": True}),
    "single_output": (1, {"size": 2, "entropy": True}),
    "no_hidden_layer": (1, {"size": 0, "skip": True, "entropy": True}),
    "linout_skip_3_outputs": (3, {"size": 2, "skip": True, "linout": True}),
}


def make_data(classes: int, rows: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(rows, 2))
    total = x.sum(axis=1)
    if classes == 1:
        return x, (total > 1).astype(float)
    cuts = [1.0] if classes == 2 else [0.8, 1.2]
    return x, class_ind(np.digitize(total, cuts))


def fit_network(name: str, maxit: int = 30) -> tuple[NNet, np.ndarray, np.ndarray]:
    classes, settings = NETWORKS[name]
    x, y = make_data(classes)
    return nnet(x, y, maxit=maxit, trace=False, seed=3, **settings), x, y


def refit(fit: NNet, x: np.ndarray, y: np.ndarray, wts: np.ndarray) -> NNet:
    """The same network started (and left) at ``wts``: R's nnet(..., Wts = wts, maxit = 0)."""
    return nnet(
        x,
        y,
        size=fit.n[1],
        Wts=wts,
        linout=fit.linout and not fit.softmax,
        entropy=fit.entropy,
        softmax=fit.softmax,
        skip=fit.skip,
        maxit=0,
        trace=False,
    )


@pytest.mark.parametrize("name", NETWORKS)
def test_vector_is_wts_exactly(name: str) -> None:
    fit, _, _ = fit_network(name)
    vector, layout = helpers.flatten(fit)
    assert layout.framework == "nnet"
    assert vector.dtype == np.float64
    np.testing.assert_array_equal(vector, fit.wts)
    assert vector is not fit.wts and not np.shares_memory(vector, fit.wts)  # a copy


@pytest.mark.parametrize("name", NETWORKS)
def test_one_entry_per_unit_in_r_order_with_summary_names(name: str) -> None:
    fit, _, _ = fit_network(name)
    _, layout = helpers.flatten(fit)
    names = fit.weight_names()
    for entry in layout:
        labels = names[entry.offset : entry.offset + entry.size]
        assert len(entry.shape) == 1
        assert labels[0] == f"b->{entry.name}"  # bias first
        assert all(label.endswith(f"->{entry.name}") for label in labels)
    units = [name.split("->")[1] for name in names]
    assert layout.names == list(dict.fromkeys(units))
    assert layout.size == fit.wts.size


def test_default_layout_is_h1_to_h5_then_o1_o2() -> None:
    fit, _, _ = fit_network("default")
    _, layout = helpers.flatten(fit)
    assert layout.names == ["h1", "h2", "h3", "h4", "h5", "o1", "o2"]
    assert [entry.shape for entry in layout] == [(3,)] * 5 + [(6,)] * 2
    assert layout.size == 5 * (2 + 1) + 2 * (5 + 1) == 27


def test_skip_layer_weights_follow_the_hidden_ones_within_each_output() -> None:
    fit, _, _ = fit_network("skip")
    _, layout = helpers.flatten(fit)
    assert layout["o1"].shape == (1 + 4 + 2,)
    o1 = fit.weight_names()[layout["o1"].offset :][:7]
    assert o1 == ["b->o1", "h1->o1", "h2->o1", "h3->o1", "h4->o1", "i1->o1", "i2->o1"]


def test_single_output_is_named_o_as_in_r() -> None:
    fit, _, _ = fit_network("single_output")
    _, layout = helpers.flatten(fit)
    assert layout.names == ["h1", "h2", "o"]
    fit, _, _ = fit_network("no_hidden_layer")
    _, layout = helpers.flatten(fit)
    assert layout.names == ["o"] and layout["o"].shape == (3,)


def test_softmax_three_classes() -> None:
    fit, _, _ = fit_network("softmax_3_classes")
    vector, layout = helpers.flatten(fit)
    assert layout.names == ["h1", "h2", "h3", "o1", "o2", "o3"]
    assert vector.size == 3 * 3 + 3 * 4 == 21


@pytest.mark.parametrize("name", NETWORKS)
def test_order_f_is_the_same_vector_for_1d_entries(name: str) -> None:
    fit, _, _ = fit_network(name)
    c_vector, c_layout = helpers.flatten(fit)
    f_vector, f_layout = helpers.flatten(fit, order="F")
    np.testing.assert_array_equal(c_vector, f_vector)
    assert c_layout.fingerprint == f_layout.fingerprint


def test_include_all_is_the_same_as_trainable() -> None:
    fit, _, _ = fit_network("default")
    vector, layout = helpers.flatten(fit, include="all")
    np.testing.assert_array_equal(vector, fit.wts)
    assert all(entry.trainable for entry in layout)


def test_unflatten_gives_each_units_incoming_weights() -> None:
    fit, _, _ = fit_network("default")
    vector, layout = helpers.flatten(fit)
    arrays = helpers.unflatten(vector, layout)
    np.testing.assert_array_equal(arrays["h1"], fit.wts[0:3])
    np.testing.assert_array_equal(arrays["o2"], fit.wts[21:27])
    np.testing.assert_array_equal(np.concatenate(list(arrays.values())), fit.wts)


@pytest.mark.parametrize("name", NETWORKS)
def test_round_trip_through_restore(name: str) -> None:
    fit, _, _ = fit_network(name)
    vector, layout = helpers.flatten(fit)
    wts_object = fit.wts
    helpers.restore(fit, np.zeros_like(vector), layout)
    assert fit.wts is wts_object  # written in place
    assert not fit.wts.any()
    helpers.restore(fit, vector, layout)
    np.testing.assert_array_equal(fit.wts, vector)
    again, _ = helpers.flatten(fit)
    np.testing.assert_array_equal(again, vector)


def test_layout_survives_json() -> None:
    fit, _, _ = fit_network("skip")
    vector, layout = helpers.flatten(fit)
    loaded = helpers.Layout.from_json(layout.to_json())
    assert loaded == layout
    helpers.restore(fit, vector, loaded)


@pytest.mark.parametrize("name", NETWORKS)
def test_restore_then_predict_equals_a_fit_built_with_those_wts(name: str) -> None:
    fit, x, y = fit_network(name)
    _, layout = helpers.flatten(fit)
    new_wts = np.random.default_rng(11).uniform(-1, 1, fit.wts.size)
    helpers.restore(fit, new_wts, layout)
    reference = refit(fit, x, y, new_wts)
    new_x = np.random.default_rng(12).uniform(size=(9, 2))
    np.testing.assert_array_equal(fit.predict(new_x), reference.predict(new_x))
    np.testing.assert_array_equal(fit.predict(x), reference.fitted_values)


def test_restore_leaves_the_training_record_alone() -> None:
    """fitted_values, residuals and value describe the fit as trained; restore keeps them."""
    fit, x, _ = fit_network("default")
    before = (fit.fitted_values.copy(), fit.residuals.copy(), fit.value, fit.convergence)
    vector, layout = helpers.flatten(fit)
    helpers.restore(fit, vector * 0.5, layout)
    np.testing.assert_array_equal(fit.fitted_values, before[0])
    np.testing.assert_array_equal(fit.residuals, before[1])
    assert (fit.value, fit.convergence) == before[2:]
    assert not np.allclose(fit.predict(x), fit.fitted_values)  # predict sees the new wts


def test_vector_from_one_fit_restores_into_a_twin() -> None:
    fit, x, y = fit_network("softmax_3_classes")
    twin = nnet(x, y, size=3, softmax=True, maxit=0, trace=False, seed=99)
    vector, layout = helpers.flatten(fit)
    helpers.restore(twin, vector, layout)
    np.testing.assert_array_equal(twin.wts, fit.wts)
    np.testing.assert_array_equal(twin.predict(x), fit.predict(x))


def snapshot(fit: NNet) -> bytes:
    return fit.wts.tobytes()


def test_wrong_length_is_refused_and_fit_unchanged() -> None:
    fit, _, _ = fit_network("default")
    vector, layout = helpers.flatten(fit)
    before = snapshot(fit)
    with pytest.raises(LayoutError, match="expected 27 values"):
        helpers.restore(fit, vector[:-1], layout)
    assert snapshot(fit) == before


def test_wrong_dtype_is_refused_and_fit_unchanged() -> None:
    fit, _, _ = fit_network("default")
    vector, layout = helpers.flatten(fit)
    before = snapshot(fit)
    with pytest.raises(LayoutError, match="dtype"):
        helpers.restore(fit, vector.astype(np.float32), layout)
    assert snapshot(fit) == before


def test_layout_of_another_architecture_is_refused_and_fit_unchanged() -> None:
    fit, x, y = fit_network("default")
    skip_fit = nnet(x, y, size=5, skip=True, maxit=0, trace=False, seed=0)
    skip_vector, skip_layout = helpers.flatten(skip_fit)
    before = snapshot(fit)
    with pytest.raises(LayoutError, match="'o1': expected shape \\(6,\\), got \\(8,\\)"):
        helpers.restore(fit, skip_vector, skip_layout)
    assert snapshot(fit) == before


def test_layout_of_another_framework_is_refused() -> None:
    fit, _, _ = fit_network("default")
    vector, layout = helpers.flatten({"w": fit.wts.copy()})
    before = snapshot(fit)
    with pytest.raises(LayoutError, match="numpy model, this is a nnet model"):
        helpers.restore(fit, vector, layout)
    assert snapshot(fit) == before


def test_nonfinite_is_refused_on_request_and_fit_unchanged() -> None:
    fit, _, _ = fit_network("default")
    vector, layout = helpers.flatten(fit)
    bad = vector.copy()
    bad[20] = np.nan
    before = snapshot(fit)
    with pytest.raises(LayoutError, match="'o1'"):
        helpers.restore(fit, bad, layout, reject_nonfinite=True)
    assert snapshot(fit) == before


def test_a_failed_write_puts_back_every_unit_already_written() -> None:
    fit, _, _ = fit_network("default")
    vector, layout = helpers.flatten(fit)
    before = snapshot(fit)
    framework, handles = helpers.adapters.handles_for(fit, "trainable")
    arrays = helpers.unflatten(vector * 2, layout)
    arrays["o1"] = arrays["o1"][:-1]  # the sixth unit's write fails
    with pytest.raises(LayoutError, match="tensor 'o1': expected shape"):
        helpers.adapters.write_all(list(zip(handles, arrays.values(), strict=True)))
    assert snapshot(fit) == before


def test_a_fit_whose_wts_do_not_match_its_shape_is_refused() -> None:
    fit, _, _ = fit_network("default")
    broken = copy.copy(fit)
    object.__setattr__(broken, "wts", fit.wts[:-1])
    with pytest.raises(LayoutError, match="has 27 weights"):
        helpers.flatten(broken)


def test_flatten_to_float32_on_request() -> None:
    fit, _, _ = fit_network("default")
    vector, layout = helpers.flatten(fit, dtype="float32")
    assert vector.dtype == np.float32 and layout.dtype == "float32"
    np.testing.assert_array_equal(vector, fit.wts.astype(np.float32))
