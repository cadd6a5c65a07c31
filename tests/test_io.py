"""Model files in Python: cr.save / cr.load round trip, atomic saves, refused files."""

import os
import pickle

import numpy as np
import pytest

import chainrule as cr

pytest.importorskip("safetensors")


def _model():
    rng = np.random.default_rng(0)
    return cr.nn.Sequential(
        cr.nn.Linear(3, 8, rng=rng),
        cr.nn.LeakyReLU(0.2),
        cr.nn.Dropout(0.1),
        cr.nn.BatchNorm1d(8),
        cr.nn.Linear(8, 2, rng=rng),
        cr.nn.Softmax(dim=-1),
    )


def test_round_trip_gives_identical_outputs_and_metadata(tmp_path):
    model = _model()
    model.train()
    model(np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32))  # moves BN statistics
    model.eval()
    path = tmp_path / "m.safetensors"
    cr.save(
        model, path, preprocessing={"feature_names": ["a", "b", "c"]}, metrics={"accuracy": 0.5}
    )
    loaded, info = cr.load(path, with_info=True)
    x = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(cr.predict(model, x), cr.predict(loaded, x))
    assert info["preprocessing"]["feature_names"] == ["a", "b", "c"]
    assert info["metrics"] == {"accuracy": 0.5}
    assert repr(loaded) == repr(model)
    assert not loaded.training


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    import chainrule._files as files

    path = tmp_path / "m.safetensors"
    cr.save(_model(), path)
    before = path.read_bytes()
    real_write = os.write

    def broken(fd, data):
        real_write(fd, bytes(data[:7]))
        raise KeyboardInterrupt  # interrupted half-way

    monkeypatch.setattr(files.os, "write", broken)
    with pytest.raises(KeyboardInterrupt):
        cr.save(_model(), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left


def test_a_custom_module_needs_weights_only(tmp_path):
    class Mine(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = cr.nn.Linear(2, 2)

        def forward(self, x):
            return self.lin(x)

    with pytest.raises(cr.ModelFileError, match="cannot describe a module of type Mine"):
        cr.save(Mine(), tmp_path / "x.safetensors")
    cr.save(Mine(), tmp_path / "w.safetensors", weights_only=True)
    with pytest.raises(cr.ModelFileError, match="holds weights only"):
        cr.load(tmp_path / "w.safetensors")


@pytest.mark.parametrize(
    "content,message",
    [
        (pickle.dumps({"weight": [1, 2]}), "looks like a pickle"),
        (b"", "is empty"),
        (b"hello world, not a model", "truncated or not a safetensors file"),
    ],
)
def test_files_that_are_not_chainrule_models_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(cr.ModelFileError, match=message):
        cr.load(path)


def test_truncated_and_foreign_safetensors_files_are_refused(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    cr.save(_model(), path)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(cr.ModelFileError, match="cut.safetensors"):
        cr.load(cut)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, dtype=np.float32)}, str(foreign))
    with pytest.raises(cr.ModelFileError, match="not a chainrule model"):
        cr.load(foreign)
    with pytest.raises(cr.ModelFileError, match="model file not found"):
        cr.load(tmp_path / "missing.safetensors")
