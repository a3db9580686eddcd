"""Every Python block of docs/cheatsheet.md runs, and does what the page says it does.

Each block flattens a model into ``vector``; its last paragraph (after a blank line) writes a
vector back. Here the vector of one model is written into a differently initialised twin,
which must then hold exactly the first model's weights.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import helpers

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = {
    block.splitlines()[0].removeprefix("# ").split(":")[0].split(" (")[0]: block
    for block in re.findall(
        r"```python\n(.*?)```", (ROOT / "docs" / "cheatsheet.md").read_text(), re.S
    )
}


def twins(framework: str) -> tuple[object, object, dict]:
    """Two models of one architecture with different weights, and names a block needs."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4))
    labels = (x[:, 0] > x[:, 1]).astype(int) + (x[:, 2] > 0)
    if framework == "keras":
        keras = pytest.importorskip("keras")
        models = [
            keras.Sequential(
                [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
                + [keras.layers.Dense(2)]
            )
            for _ in range(2)
        ]
        models[1].layers[1].moving_mean.assign(np.full(3, 0.5, np.float32))  # buffers differ too
        return *models, {}
    if framework == "torch":
        torch = pytest.importorskip("torch")
        nets = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            nets.append(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)))
        return *nets, {}
    if framework == "sklearn":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits = [
                MLPClassifier((5,), max_iter=3, random_state=seed).fit(x, labels) for seed in (0, 1)
            ]
        return *fits, {}
    targets = helpers.nnet.class_ind(labels)
    fits = [helpers.nnet.nnet(x, targets, size=2, maxit=5, trace=False, seed=s) for s in (0, 1)]
    return *fits, {"x": x, "y": targets}


CASES = [
    ("Keras 3", "keras", "all"),
    ("PyTorch", "torch", "trainable"),
    ("scikit-learn MLPClassifier / MLPRegressor", "sklearn", "all"),
    ("helpers.nnet", "nnet", "all"),
    *[
        ("any of them, with helpers", framework, "trainable")
        for framework in ("keras", "torch", "sklearn", "nnet")
    ],
]


def test_every_python_block_is_tested():
    assert sorted(BLOCKS) == sorted({title for title, _, _ in CASES})


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize(("title", "framework", "include"), CASES)
def test_a_cheat_sheet_block_moves_one_models_weights_into_its_twin(title, framework, include):
    source, target, names = twins(framework)
    flatten_code, restore_code = BLOCKS[title].rsplit("\n\n", 1)
    found = {"np": np, "helpers": helpers, "model": source, "fit": source, **names}
    exec(flatten_code, found)  # our own documentation's code
    vector = np.asarray(getattr(found["vector"], "detach", lambda: found["vector"])())
    # The one-liner's vector is what helpers.flatten gives (the page says with which include).
    np.testing.assert_array_equal(vector, helpers.flatten(source, include=include)[0])
    assert not np.array_equal(helpers.flatten(target, include=include)[0], vector)
    written = {"np": np, "helpers": helpers, "model": target, "fit": target, **names}
    exec(flatten_code, written)  # the restore part uses its names
    written["vector"], written["layout"] = found["vector"], found.get("layout")
    exec(restore_code, written)
    restored = written["fit"] if framework == "nnet" else written["model"]
    np.testing.assert_array_equal(helpers.flatten(restored, include=include)[0], vector)
