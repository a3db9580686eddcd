"""Tensor kinds in layouts, and choosing parts of the vector: select, views, norms, hold_mask."""

from __future__ import annotations

import dataclasses
import doctest
import hashlib
import json
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

import helpers
from helpers import Layout, LayoutError, hold_mask, norms, select, views
from helpers._layout import KINDS, _checksum

torch.set_num_threads(1)


def kinds_of(layout: Layout) -> dict[str, str]:
    return {entry.name: entry.kind for entry in layout}


# ------------------------------------------------------------------ kinds, per adapter


class Custom(nn.Module):
    """A module the adapter does not know: its tensors' kinds are unknown."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.register_buffer("scale", torch.ones(3))


def test_torch_kinds_come_from_the_owning_module():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(2, 3, 2),
        nn.BatchNorm1d(3),
        nn.Flatten(),
        nn.Linear(6, 4),
        nn.LayerNorm(4),
        nn.PReLU(),
        Custom(),
    )
    _, layout = helpers.flatten(model, include="all")
    assert kinds_of(layout) == {
        "0.weight": "weight",
        "0.bias": "bias",
        "1.weight": "scale",
        "1.bias": "shift",
        "1.running_mean": "statistic",
        "1.running_var": "statistic",
        "1.num_batches_tracked": "statistic",
        "3.weight": "weight",
        "3.bias": "bias",
        "4.weight": "scale",
        "4.bias": "shift",
        "5.weight": "unknown",  # PReLU's slope is no kernel
        "6.weight": "unknown",
        "6.scale": "unknown",
    }


def test_torch_kinds_of_recurrent_attention_embedding_and_a_bare_module():
    recurrent = nn.LSTM(3, 4, proj_size=2, bidirectional=True)
    kinds = kinds_of(helpers.flatten(recurrent)[1])
    assert {name: kind for name, kind in kinds.items() if kind != "weight"} == {
        "bias_ih_l0": "bias",
        "bias_hh_l0": "bias",
        "bias_ih_l0_reverse": "bias",
        "bias_hh_l0_reverse": "bias",
    }
    assert "weight_hr_l0" in kinds
    attention = nn.MultiheadAttention(4, 2, add_bias_kv=True)
    assert kinds_of(helpers.flatten(attention)[1]) == {
        "in_proj_weight": "weight",
        "in_proj_bias": "bias",
        "bias_k": "bias",
        "bias_v": "bias",
        "out_proj.weight": "weight",
        "out_proj.bias": "bias",
    }
    assert kinds_of(helpers.flatten(nn.Embedding(5, 2))[1]) == {"weight": "weight"}
    assert kinds_of(helpers.flatten(nn.GroupNorm(2, 4))[1]) == {"weight": "scale", "bias": "shift"}


def test_torch_prune_keeps_the_kinds_and_its_mask_is_unknown():
    model = nn.Sequential(nn.Linear(4, 3))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    _, layout = helpers.flatten(model, include="all")
    assert kinds_of(layout) == {
        "0.bias": "bias",
        "0.weight_orig": "weight",
        "0.weight_mask": "unknown",
    }


def test_sklearn_kinds():
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    model = MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0)
    with pytest.warns(Warning):  # ConvergenceWarning: five iterations are not enough
        model.fit(rng.normal(size=(20, 2)), rng.normal(size=20))
    vector, layout = helpers.flatten(model)
    assert list(kinds_of(layout).values()) == ["weight", "bias", "weight", "bias"]
    weights = vector[select(layout, kind="weight")]
    expected = np.concatenate([coef.ravel() for coef in model.coefs_])
    assert np.array_equal(weights, expected)


@pytest.mark.parametrize("skip", [False, True])
def test_nnet_bias_and_weight_are_positions_inside_each_unit(skip):
    from helpers.nnet import class_ind, nnet

    rng = np.random.default_rng(1)
    x = rng.uniform(size=(30, 3))
    fit = nnet(x, class_ind(rng.integers(0, 3, 30)), size=2, skip=skip, maxit=5, trace=False)
    vector, layout = helpers.flatten(fit)
    assert set(kinds_of(layout).values()) == {"bias+weight"}
    is_bias = np.array([name.startswith("b->") for name in fit.weight_names()])
    assert np.array_equal(select(layout, kind="bias"), is_bias)
    assert np.array_equal(select(layout, kind="weight"), ~is_bias)
    assert select(layout, kind=("bias", "weight")).all()
    assert select(layout, kind="bias+weight").all()
    # h2's incoming weights, without its bias: the weights named "i*->h2"
    h2 = select(layout, kind="weight", name="h2")
    assert [fit.weight_names()[i] for i in np.flatnonzero(h2)] == ["i1->h2", "i2->h2", "i3->h2"]
    assert norms(vector, layout, select(layout, kind="weight"))["h2"] == pytest.approx(
        np.linalg.norm(vector[h2])
    )


def test_nnet_and_sklearn_layouts_keep_their_kinds_through_json():
    from sklearn.neural_network import MLPClassifier

    from helpers.nnet import class_ind, nnet

    rng = np.random.default_rng(2)
    x = rng.uniform(size=(30, 2))
    fit = nnet(x, class_ind(rng.integers(0, 2, 30)), size=2, maxit=3, trace=False)
    classifier = MLPClassifier(hidden_layer_sizes=(2,), max_iter=3, random_state=0)
    with pytest.warns(Warning):  # ConvergenceWarning
        classifier.fit(x, rng.integers(0, 2, 30))
    for model in (fit, classifier):
        layout = helpers.flatten(model)[1]
        again = Layout.from_json(layout.to_json())
        assert again == layout and kinds_of(again) == kinds_of(layout)
        assert "unknown" not in kinds_of(again).values()


def test_dict_kinds_are_unknown_and_selecting_a_kind_says_so():
    vector, layout = helpers.flatten({"kernel": np.ones((2, 3)), "bias": np.zeros(3)})
    assert set(kinds_of(layout).values()) == {"unknown"}
    with pytest.raises(LayoutError, match=r"kind='weight'.* kinds are \['unknown'\]"):
        select(layout, kind="weight")
    assert select(layout, name="kernel").sum() == 6


def test_keras_kinds_come_from_the_variable_names():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            layers.LSTM(4, return_sequences=True),
            layers.BatchNormalization(),
            layers.Flatten(),
            layers.Dense(2, kernel_regularizer=keras.regularizers.L2(0.1)),
            layers.PReLU(),
        ]
    )
    vector, layout = helpers.flatten(model, include="all")
    short = {name.rsplit("/", 1)[-1]: kind for name, kind in kinds_of(layout).items()}
    assert short == {
        "kernel": "weight",
        "recurrent_kernel": "weight",
        "bias": "bias",
        "gamma": "scale",
        "beta": "shift",
        "moving_mean": "statistic",
        "moving_variance": "statistic",
        "alpha": "unknown",
    }
    assert [kind for kind in kinds_of(layout).values()].count("weight") == 3
    assert Layout.from_json(layout.to_json()) == layout  # kinds survive the JSON
    # the same selection as on torch: the kernels, which is what kernel_regularizer sees
    dense_kernel = select(layout, kind="weight", name="*dense*")
    expected = model.layers[3].kernel.numpy().ravel()
    assert np.array_equal(vector[dense_kernel], expected)
    penalty = 0.1 * float(np.sum(vector[dense_kernel].astype(np.float64) ** 2))
    model(np.ones((1, 5, 3), dtype="float32"))  # the regulariser's loss is added in a call
    assert float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses)) == (
        pytest.approx(penalty, rel=1e-6)
    )


# ---------------------------------------------------------------- kinds in the JSON


def small_torch_layout() -> tuple[np.ndarray, Layout]:
    torch.manual_seed(0)
    return helpers.flatten(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), include="all")


def test_to_json_round_trip_keeps_the_kinds():
    _, layout = small_torch_layout()
    again = Layout.from_json(layout.to_json())
    assert again == layout
    assert kinds_of(again)["1.running_var"] == "statistic"
    document = json.loads(layout.to_json())
    assert document["format_version"] == 2  # kinds are an optional key of version 2
    assert [entry["kind"] for entry in document["entries"]][:2] == ["weight", "bias"]


def test_an_edited_kind_is_refused_by_the_checksum():
    _, layout = small_torch_layout()
    document = json.loads(layout.to_json())
    document["entries"][0]["kind"] = "bias"
    with pytest.raises(LayoutError, match="checksum"):
        Layout.from_json(json.dumps(document))
    document["entries"][0]["kind"] = "kernel"
    with pytest.raises(LayoutError, match=r"entry #0: tensor '0.weight': kind must be one of"):
        Layout.from_json(json.dumps(document))


def without_kinds(layout: Layout) -> dict:
    """What a layout saved before kinds existed looks like: no kind key, its own checksum."""
    document = json.loads(layout.to_json())
    for entry in document["entries"]:
        del entry["kind"]
    document["checksum"] = _checksum(document)
    return document


def test_a_layout_saved_before_kinds_reads_as_unknown_and_still_fits_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    vector, layout = helpers.flatten(model, include="all")
    old = Layout.from_json(json.dumps(without_kinds(layout)))
    assert set(kinds_of(old).values()) == {"unknown"}
    assert old.fingerprint == layout.fingerprint  # kinds are labels, not structure
    helpers.restore(model, vector * 2, old)
    assert np.array_equal(helpers.flatten(model, include="all")[0], vector * 2)
    # its checksum covers the document as it was written: adding kinds is an edit
    document = without_kinds(layout)
    for entry, kind in zip(document["entries"], kinds_of(layout).values(), strict=True):
        entry["kind"] = kind
    with pytest.raises(LayoutError, match="checksum"):
        Layout.from_json(json.dumps(document))


def test_kinds_on_some_entries_only_are_refused():
    _, layout = small_torch_layout()
    document = json.loads(layout.to_json())
    del document["entries"][2]["kind"]
    with pytest.raises(LayoutError, match=r"entry #2: missing keys \['kind'\]"):
        Layout.from_json(json.dumps(document))
    document = without_kinds(layout)
    document["entries"][1]["kind"] = "bias"
    with pytest.raises(LayoutError, match=r"entry #1: missing keys \[\], unknown keys \['kind'\]"):
        Layout.from_json(json.dumps(document))


def test_kind_is_checked_when_an_entry_is_made():
    with pytest.raises(LayoutError, match=r"tensor 'w': kind must be one of .* got 'kernel'"):
        Layout.from_specs([("w", (2,), "float32", True, "kernel")], framework="numpy")
    layout = Layout.from_specs([("w", (2,), "float32", True, "weight")], framework="numpy")
    assert layout["w"].kind == "weight"
    assert Layout.from_specs([("w", (2,), "float32", True)], framework="numpy")["w"].kind == (
        "unknown"
    )


# ---------------------------------------------------------------------------- select


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_select_combines_criteria_with_and_and_values_with_or():
    _, layout = helpers.flatten(mlp())
    weights = select(layout, kind="weight")
    assert weights.dtype == np.bool_ and weights.shape == (layout.size,)
    assert weights.sum() == 12 + 6
    assert select(layout, kind=["weight", "bias"]).all()
    first = select(layout, name="0.*")
    assert first.sum() == 12 + 3 and first[:15].all()
    assert np.array_equal(select(layout, kind="weight", name="0.*"), weights & first)
    assert select(layout, name=("0.bias", "2.bias")).sum() == 5
    assert select(layout).all()
    assert select(layout, trainable=True).all()


def test_select_refuses_what_would_select_nothing_or_is_misspelled():
    _, layout = helpers.flatten(mlp())
    with pytest.raises(ValueError, match=r"kind: \['kernel'\] not among the kinds"):
        select(layout, kind="kernel")
    with pytest.raises(LayoutError, match=r"name '1\.\*' matches no tensor; the layout has"):
        select(layout, name=("0.*", "1.*"))
    with pytest.raises(LayoutError, match=r"select\(kind='scale'\) matches no value"):
        select(layout, kind="scale")
    with pytest.raises(LayoutError, match=r"trainable=False\) matches no value"):
        select(layout, trainable=False)
    with pytest.raises(TypeError, match="name: expected a string or strings"):
        select(layout, name=3)
    with pytest.raises(TypeError, match="kind: expected a string or strings"):
        select(layout, kind=[])
    with pytest.raises(TypeError, match="trainable: expected True, False or None"):
        select(layout, trainable=1)
    with pytest.raises(TypeError, match="layout: expected a helpers.Layout"):
        select("0.weight", kind="weight")


def test_select_by_trainability_picks_the_buffers():
    _, layout = small_torch_layout()
    assert select(layout, trainable=False).sum() == 2 + 2 + 1
    assert np.array_equal(select(layout, trainable=False), select(layout, kind="statistic"))


specs = st.lists(
    st.tuples(
        st.lists(st.integers(0, 3), max_size=2).map(tuple),
        st.booleans(),
        st.sampled_from(KINDS),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200)
@given(
    specs=specs,
    kinds=st.sets(st.sampled_from(KINDS), min_size=1),
    trainable=st.none() | st.booleans(),
)
def test_select_matches_a_value_by_value_reading_of_the_layout(specs, kinds, trainable):
    layout = Layout.from_specs(
        [(f"t{i}", shape, "float32", flag, kind) for i, (shape, flag, kind) in enumerate(specs)],
        framework="numpy",
    )
    expected = []
    for entry in layout:
        for position in range(entry.size):
            kind = entry.kind
            if kind == "bias+weight":
                kind = "bias" if position == 0 else "weight"
            chosen = kind in kinds or entry.kind in kinds
            expected.append(chosen and trainable in (None, entry.trainable))
    expected = np.array(expected, dtype=bool)
    if not expected.any():
        with pytest.raises(LayoutError, match="matches no value"):
            select(layout, kind=kinds, trainable=trainable)
    else:
        assert np.array_equal(select(layout, kind=kinds, trainable=trainable), expected)


# ----------------------------------------------------------------------- views, norms


def test_views_are_shaped_like_the_tensors_and_write_through():
    model = mlp()
    vector, layout = helpers.flatten(model)
    parts = views(vector, layout)
    assert {name: part.shape for name, part in parts.items()} == {
        "0.weight": (3, 4),
        "0.bias": (3,),
        "2.weight": (2, 3),
        "2.bias": (2,),
    }
    assert np.array_equal(parts["2.weight"], model[2].weight.detach().numpy())
    parts["0.bias"][:] = 7
    assert np.array_equal(vector[12:15], [7, 7, 7])


def test_views_of_an_f_order_layout_read_each_tensor_column_by_column():
    model = mlp()
    vector, layout = helpers.flatten(model, order="F")
    weight = model[0].weight.detach().numpy()
    assert np.array_equal(vector[:3], weight[:, 0])  # the first column comes first
    assert np.array_equal(views(vector, layout)["0.weight"], weight)
    views(vector, layout)["0.weight"][0, 1] = 5.0
    assert vector[3] == 5.0


def test_views_of_a_mask_and_refusals():
    vector, layout = helpers.flatten(mlp())
    mask = views(select(layout, kind="bias"), layout)
    assert not mask["0.weight"].any() and mask["2.bias"].all()
    with pytest.raises(LayoutError, match=r"array: expected shape \(23,\) .* got \(22,\)"):
        views(vector[:-1], layout)
    with pytest.raises(TypeError, match="array: expected a NumPy array, got list"):
        views(list(vector), layout)
    strided = np.zeros(2 * layout.size, dtype=vector.dtype)
    views(strided[::-2], layout)["0.weight"][2, 3] = 1.0  # strided, even backwards: views
    assert strided[2 * layout.size - 1 - 2 * 11] == 1.0


@settings(max_examples=100)
@given(
    shapes=st.lists(st.lists(st.integers(0, 4), max_size=3).map(tuple), min_size=1, max_size=4),
    order=st.sampled_from(["C", "F"]),
)
def test_views_match_unflatten_in_either_order(shapes, order):
    rng = np.random.default_rng(len(shapes))
    arrays = {f"t{i}": rng.normal(size=shape) for i, shape in enumerate(shapes)}
    vector, layout = helpers.flatten(arrays, order=order)
    parts = views(vector, layout)
    copies = helpers.unflatten(vector, layout)
    for name, array in arrays.items():
        assert np.array_equal(parts[name], array) and np.array_equal(copies[name], array)
        assert parts[name].size == 0 or np.shares_memory(parts[name], vector)


def test_norms_per_tensor_with_and_without_a_mask():
    vector, layout = helpers.flatten(mlp())
    parts = views(vector, layout)
    result = norms(vector, layout)
    for name, part in parts.items():
        assert result[name] == pytest.approx(float(np.linalg.norm(part.astype(np.float64))))
    weights_only = norms(vector, layout, select(layout, kind="weight"))
    assert list(weights_only) == ["0.weight", "2.weight"]
    assert norms(vector, layout, ord=1)["0.bias"] == pytest.approx(np.abs(parts["0.bias"]).sum())
    assert norms(vector, layout, ord=np.inf)["2.weight"] == np.abs(parts["2.weight"]).max()
    with pytest.raises(ValueError, match="ord: expected 1, 2 or np.inf"):
        norms(vector, layout, ord=3)
    with pytest.raises(TypeError, match="mask: expected a boolean array, got dtype float32"):
        norms(vector, layout, mask=vector)


# ------------------------------------------------------------------------- hold_mask

OPTIMIZERS = {
    "sgd_momentum_weight_decay": lambda p: torch.optim.SGD(
        p, lr=0.1, momentum=0.9, weight_decay=0.01
    ),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    "fused_adam": lambda p: torch.optim.Adam(p, lr=0.01, fused=True),
}
X = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 2, (32,), generator=torch.Generator().manual_seed(1))


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    for step in range(steps):
        optimizer.zero_grad()
        batch = slice(8 * (step % 4), 8 * (step % 4) + 8)
        nn.functional.cross_entropy(model(X[batch]), Y[batch]).backward()
        optimizer.step()


def magnitude_mask(vector: np.ndarray, layout: Layout) -> np.ndarray:
    """Prune the smaller half of the weights; keep the biases."""
    weights = select(layout, kind="weight")
    threshold = np.median(np.abs(vector[weights]))
    return ~weights | (np.abs(vector) > threshold)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_held_values_stay_zero_through_momentum_moments_and_weight_decay(name):
    model = mlp()
    optimizer = OPTIMIZERS[name](model.parameters())
    train_steps(model, optimizer, 5)  # the optimizer now holds momentum / moments
    vector, layout = helpers.flatten(model)
    mask = magnitude_mask(vector, layout)
    with hold_mask(model, mask, layout, optimizer):
        assert np.all(helpers.flatten(model)[0][~mask] == 0)  # zeroed at once
        for _ in range(6):
            train_steps(model, optimizer, 1)
            after = helpers.flatten(model)[0]
            assert np.all(after[~mask] == 0)
    assert np.all(after[mask] != vector[mask])  # the kept values trained


@pytest.mark.parametrize("name", ["sgd_momentum_weight_decay", "adam"])
def test_zeroing_gradients_alone_would_not_hold_them(name):
    """The control for the test above: a gradient hook alone lets momentum move them."""
    model = mlp()
    optimizer = OPTIMIZERS[name](model.parameters())
    train_steps(model, optimizer, 5)
    vector, layout = helpers.flatten(model)
    mask = magnitude_mask(vector, layout)
    pruned = views(~mask, layout)
    for parameter_name, parameter in model.named_parameters():
        zero = torch.from_numpy(pruned[parameter_name].copy())
        with torch.no_grad():
            parameter.masked_fill_(zero, 0)
        parameter.register_hook(lambda grad, zero=zero: grad.masked_fill(zero, 0))
    train_steps(model, optimizer, 3)
    assert np.count_nonzero(helpers.flatten(model)[0][~mask]) > 0


@pytest.mark.parametrize("name", ["sgd_momentum_weight_decay", "adam"])
def test_held_training_is_training_the_masked_network(name):
    """With a fresh optimizer, holding a mask trains what a forward pass through
    ``weight * mask`` trains (the lottery-ticket paper's formulation)."""
    held, reference = mlp(), mlp()
    vector, layout = helpers.flatten(held)
    mask = magnitude_mask(vector, layout)
    multipliers = {
        key: torch.from_numpy(value.astype(np.float32))
        for key, value in views(mask, layout).items()
    }
    helpers.restore(reference, vector * mask, layout)
    held_optimizer = OPTIMIZERS[name](held.parameters())
    reference_optimizer = OPTIMIZERS[name](reference.parameters())
    parameters = dict(reference.named_parameters())

    def masked_forward(x: torch.Tensor) -> torch.Tensor:
        masked = {key: parameters[key] * multipliers[key] for key in parameters}
        return torch.func.functional_call(reference, masked, (x,))

    with hold_mask(held, mask, layout, held_optimizer):
        for step in range(6):
            batch = slice(8 * (step % 4), 8 * (step % 4) + 8)
            for optimizer, forward in (
                (held_optimizer, held),
                (reference_optimizer, masked_forward),
            ):
                optimizer.zero_grad()
                nn.functional.cross_entropy(forward(X[batch]), Y[batch]).backward()
                optimizer.step()
    trained = helpers.flatten(held)[0]
    np.testing.assert_allclose(trained, helpers.flatten(reference)[0] * mask, rtol=0, atol=1e-6)


def test_an_f_order_layout_holds_the_same_weights():
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    vector, layout = helpers.flatten(model, order="F")
    mask = magnitude_mask(vector, layout)  # F order: column by column
    with hold_mask(model, mask, layout, optimizer):
        train_steps(model, optimizer, 3)
    after = helpers.flatten(model, order="F")[0]
    assert np.all(after[~mask] == 0) and np.all(after[mask] != 0)
    weight = model[0].weight.detach().numpy()
    pruned_first = views(~mask, layout)["0.weight"]
    assert np.all(weight[pruned_first] == 0)  # the same tensor positions, read back in torch


def test_removing_the_hold_lets_the_values_train_again():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    vector, layout = helpers.flatten(model)
    mask = magnitude_mask(vector, layout)
    held = hold_mask(model, mask, layout, optimizer)
    train_steps(model, optimizer, 2)
    assert np.all(helpers.flatten(model)[0][~mask] == 0)
    held.remove()
    train_steps(model, optimizer, 2)
    assert np.count_nonzero(helpers.flatten(model)[0][~mask]) > 0


def digest(model: nn.Module) -> str:
    hashed = hashlib.sha256()
    for tensor in model.state_dict().values():
        hashed.update(tensor.detach().numpy().tobytes())
    return hashed.hexdigest()


def test_hold_mask_refuses_and_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    vector, layout = helpers.flatten(model)
    _, all_layout = helpers.flatten(model, include="all")
    before = digest(model)
    mask = np.zeros(layout.size, dtype=bool)
    cases = [
        ((model, mask.astype(float), layout, optimizer), TypeError, "expected a boolean array"),
        ((model, mask[:-1], layout, optimizer), LayoutError, r"expected shape \(21,\)"),
        ((model, mask, layout, "sgd"), TypeError, "expected the torch.optim.Optimizer"),
        ((model.state_dict(), mask, layout, optimizer), TypeError, "works on a torch.nn.Module"),
        ((nn.Linear(4, 2), mask, layout, optimizer), LayoutError, "does not fit this model"),
        (
            (model, ~select(all_layout, kind="statistic"), all_layout, optimizer),
            LayoutError,
            r"'1.running_mean' is not a trainable parameter",
        ),
        (
            (model, mask, layout, torch.optim.SGD(model[1].parameters(), lr=0.1)),
            LayoutError,
            r"'0.weight' is not in the optimizer's param_groups",
        ),
    ]
    for arguments, error, message in cases:
        with pytest.raises(error, match=message):
            hold_mask(*arguments)
        assert digest(model) == before
    assert not optimizer._optimizer_step_post_hooks  # no hook left behind either


# --------------------------------------------------------------------- the examples


@pytest.mark.parametrize("module", ["helpers._masks", "helpers._layout"])
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(__import__(module, fromlist=["_"]), verbose=False)
    assert tried > 0 and failures == 0


def test_entries_keep_their_kind_through_dataclass_replace():
    _, layout = small_torch_layout()
    entry = dataclasses.replace(layout["1.weight"], name="renamed")
    assert entry.kind == "scale"
