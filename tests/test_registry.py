"""Facts on the classes (chainrule.registry): a layer and a loss defined HERE, in the test file,
are saved and loaded, summarized, explained and reported with no other file touched."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import registry
from chainrule.metrics import output_kind


class Swish(
    cr.nn.Module,
    role="activation",
    config=("beta",),
    keeps_shape=True,
    elementwise=True,
    derivative="σ(β{i}) + β{o}(1 − σ(β{i}))",
):
    """z·σ(βz): a layer that chainrule does not ship, with its facts in its class line."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return x * cr.sigmoid(x * self.beta)


class MAELoss(
    cr.nn.Module, role="loss", output_kind="value", formula="|{o} − y|", derivative="sign({o} − y)"
):
    def forward(self, input, target):
        return cr.abs(input - cr.tensor(np.asarray(target, dtype=input.dtype))).mean()


def _model():
    return cr.nn.Sequential(
        cr.nn.Linear(2, 4, rng=np.random.default_rng(0)),
        Swish(1.5),
        cr.nn.Linear(4, 1, rng=np.random.default_rng(1)),
    )


def test_the_new_layer_joined_the_registry_by_being_defined():
    assert registry.lookup("Swish") is Swish
    f = registry.facts_of(Swish(2.0))
    assert (f.role, f.config, f.keeps_shape, f.elementwise) == ("activation", ("beta",), True, True)
    assert "Swish" in registry.registered(role="activation", savable=True)
    assert registry.facts_of("MAELoss").output_kind == "value"


def test_model_file_round_trip_of_the_new_layer(tmp_path):
    model = _model()
    assert cr.io.describe(model)["children"][1] == {"type": "Swish", "config": {"beta": 1.5}}
    path = cr.save(model, tmp_path / "swish.safetensors")
    back = cr.load(path)
    assert isinstance(back[1], Swish) and back[1].beta == 1.5
    x = np.random.default_rng(2).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_array_equal(cr.predict(back, x), cr.predict(model, x))


def test_summary_carries_shapes_through_the_new_layer():
    text = _model().summary()  # no input shape: inferred from the facts, not by running
    row = next(line for line in text.splitlines() if "(Swish)" in line)
    assert "(None, 4)" in row


def test_explain_names_the_new_layer_an_activation_with_its_derivative():
    model = _model()
    x = np.array([[0.5, -1.0], [1.0, 2.0]])
    y = np.array([[0.3], [-0.2]])
    e = cr.explain(model, x, y, MAELoss())
    text = str(e)
    assert e.ok
    step = next(s for s in e.forward if s["layer"] == "Swish")
    assert step["kind"] == "activation" and step["unit"] == "activation σ"
    assert "σ(βz¹) + βa¹(1 − σ(βz¹))" in text  # the derivative label, in its symbols
    assert "|ŷ − y|" in text or "|z² − y|" in text  # the loss formula, from MAELoss's facts
    assert output_kind(MAELoss()) == "value"


def test_facts_are_not_inherited_and_names_are_not_shared():
    class MyLinear(cr.nn.Linear):  # no facts of its own: not a Linear for model files
        pass

    assert registry.facts_of(MyLinear).role == "layer"
    with pytest.raises(cr.ModelFileError, match="cannot describe a module of type MyLinear"):
        cr.io.describe(cr.nn.Sequential(MyLinear(2, 2)))
    with pytest.raises(cr.ConfigError, match="'Linear' is already taken"):
        type("Linear", (cr.nn.Module,), {"__module__": "elsewhere"}, role="linear", config=())
    with pytest.raises(cr.ConfigError, match="unknown class facts"):
        type("Odd", (cr.nn.Module,), {}, colour="red")
    with pytest.raises(cr.ConfigError, match="role must be one of"):
        type("Odd2", (cr.nn.Module,), {}, role="magic")
