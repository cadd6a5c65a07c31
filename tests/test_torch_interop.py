"""chainrule.torch (to_torch / from_torch) and cr.load(path, into=model) for PyTorch weights.

Round trips chainrule -> torch -> chainrule are exact (every array equal, every dtype kept);
converted networks compute what the originals compute; weights saved by
safetensors.torch.save_file load into a chainrule network with load_state_dict's errors.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import chainrule as cr  # noqa: E402
from chainrule import nn  # noqa: E402
from chainrule.torch import from_torch, to_torch  # noqa: E402


def every_layer_net(dtype=np.float32):
    cr.manual_seed(0)
    bn = nn.BatchNorm1d(8)
    bn.running_mean[...] = np.arange(8) / 10
    bn.running_var[...] = np.arange(1, 9) / 4
    bn.num_batches_tracked[...] = 7
    net = nn.Sequential(
        nn.Linear(4, 8),
        nn.GELU(),
        bn,
        nn.Dropout(0.0),
        nn.Linear(8, 6, bias=False),
        nn.LeakyReLU(0.1),
        nn.GELU("tanh"),
        nn.Sequential(nn.Tanh(), nn.Sigmoid(), nn.Flatten(), nn.Identity(), nn.Linear(6, 6)),
        nn.BatchNorm1d(6, affine=False, momentum=None),
        nn.BatchNorm1d(6, bias=False),
        nn.BatchNorm1d(6, track_running_stats=False),
        nn.ReLU(),
        nn.Linear(6, 3),
        nn.Softmax(dim=1),
        nn.LogSoftmax(dim=-1),
    )
    return net.to(dtype)


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert sa[k].shape == sb[k].shape, k
        assert np.array_equal(sa[k], sb[k]), k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact_and_keeps_dtypes(dtype):
    net = every_layer_net(dtype)
    net[4].weight.requires_grad = False
    net[7].train(False)
    tnet = to_torch(net)
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    assert all(p.dtype == tdtype for p in tnet.parameters())
    assert tnet[2].num_batches_tracked.dtype == torch.int64
    assert int(tnet[2].num_batches_tracked) == 7
    assert tnet[9].bias is None and tnet[8].weight is None and tnet[10].running_mean is None
    assert not tnet[4].weight.requires_grad and tnet[0].weight.requires_grad
    assert tnet.training and not tnet[7].training and not tnet[7][2].training
    back = from_torch(tnet)
    assert_same_state(net, back)
    assert [type(m).__name__ for m in back.modules()] == [type(m).__name__ for m in net.modules()]
    assert not back[4].weight.requires_grad and back[0].weight.requires_grad
    assert back.training and not back[7].training
    assert back[8].momentum is None and back[9].bias is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_converted_networks_compute_the_same(dtype):
    net = every_layer_net(dtype)
    X = np.random.default_rng(0).normal(size=(16, 4)).astype(dtype)
    for mode in (True, False):  # training mode too: batch statistics and running updates
        net.train(mode)
        tnet = to_torch(net)
        tout = tnet(torch.from_numpy(X)).detach().numpy()
        cout = net(X).data
        assert tout.dtype == cout.dtype == dtype
        np.testing.assert_allclose(cout, tout, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)
        if mode:  # both updated their running statistics the same way
            np.testing.assert_allclose(net[2].running_var, tnet[2].running_var.numpy(), rtol=1e-6)


def test_from_torch_keeps_names_and_does_not_move_the_seed():
    from collections import OrderedDict

    tnet = torch.nn.Sequential(
        OrderedDict(
            hidden=torch.nn.Linear(3, 5),
            act=torch.nn.ReLU(),
            out=torch.nn.Linear(5, 2, dtype=torch.float64),
        )
    )
    cr.manual_seed(11)
    expected = cr.default_rng().random(3)
    cr.manual_seed(11)
    net = from_torch(tnet)
    assert np.array_equal(cr.default_rng().random(3), expected)
    assert list(net.state_dict()) == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert net.out.weight.data.dtype == np.float64 and net.hidden.weight.data.dtype == np.float32
    assert np.array_equal(net.hidden.weight.data, tnet.hidden.weight.detach().numpy())


def test_unsupported_layers_are_named():
    class Twice(torch.nn.Module):
        def forward(self, x):
            return 2 * x

    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Sequential(torch.nn.LSTM(4, 4)))
    with pytest.raises(
        cr.ConfigError,
        match=r"from_torch: layer 1\.0 is a torch\.nn\.LSTM, "
        r"which has no counterpart",
    ):
        from_torch(tnet)
    with pytest.raises(cr.ConfigError, match="layer 1 is a .*Twice"):
        from_torch(torch.nn.Sequential(torch.nn.ReLU(), Twice()))
    with pytest.raises(cr.ConfigError, match="dim=None"):
        from_torch(torch.nn.Sequential(torch.nn.Softmax()))
    with pytest.raises(cr.ConfigError, match="bfloat16"):
        from_torch(torch.nn.Linear(2, 2, dtype=torch.bfloat16))

    class Mine(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(cr.ConfigError, match="to_torch: layer 0 is a Mine"):
        to_torch(nn.Sequential(Mine()))
    with pytest.raises(cr.ConfigError, match="expected a chainrule module"):
        to_torch(tnet)


# --- cr.load(path, into=model) ----------------------------------------------------------------


def test_load_into_reads_torch_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    tnet = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    )
    tnet.train()
    tnet(torch.randn(32, 4))  # running statistics that are not the defaults
    tnet.eval()
    st.save_file(tnet.state_dict(), tmp_path / "w.safetensors")
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    assert cr.load(tmp_path / "w.safetensors", into=net) is net
    net.eval()
    X = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    np.testing.assert_allclose(
        net(X).data, tnet(torch.from_numpy(X)).detach().numpy(), rtol=0, atol=1e-6
    )
    assert int(net[1].num_batches_tracked) == 1
    # a float64 chainrule network takes the weights in its own dtype
    net64 = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3)).double()
    cr.load(tmp_path / "w.safetensors", into=net64)
    assert net64[0].weight.data.dtype == np.float64


def test_load_into_gives_load_state_dicts_errors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = tmp_path / "w.safetensors"
    st.save_file(tnet.state_dict(), path)
    before = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    kept = before.state_dict()
    with pytest.raises(
        cr.ModelFileError,
        match=r"w\.safetensors: load_state_dict for Sequential: "
        r"size mismatch for '2\.weight'",
    ):
        cr.load(path, into=before)
    assert_same_state(before, before)  # nothing changed on failure
    assert all(np.array_equal(kept[k], v) for k, v in before.state_dict().items())
    small = nn.Sequential(nn.Linear(4, 8))
    with pytest.raises(cr.ModelFileError, match=r"unexpected key '2\.weight'"):
        cr.load(path, into=small)
    missing, unexpected = small.load_state_dict({"0.weight": np.zeros((8, 4))}, strict=False)
    assert missing == ["0.bias"]
    assert cr.load(path, into=small, strict=False) is small
    np.testing.assert_array_equal(small[0].weight.data, tnet[0].weight.detach().numpy())
    big = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Linear(3, 1))
    with pytest.raises(cr.ModelFileError, match=r"missing key '3\.weight'"):
        cr.load(path, into=big)
    with pytest.raises(cr.ModelFileError, match="into= takes a chainrule module"):
        cr.load(path, into=tnet)
    with pytest.raises(cr.ModelFileError, match=r"cr\.load\(path, into=model\)"):
        cr.load(path)  # without into=: not a chainrule model file, and says what to do


def test_load_into_bfloat16(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    path = tmp_path / "bf16.safetensors"
    st.save_file(
        {
            "weight": torch.ones(2, 2, dtype=torch.bfloat16),
            "bias": torch.ones(2, dtype=torch.bfloat16),
        },
        path,
    )
    with pytest.raises(cr.ModelFileError, match="dtype BF16, which numpy cannot hold"):
        cr.load(path, into=nn.Linear(2, 2))


def test_load_into_accepts_a_chainrule_model_file(tmp_path):
    pytest.importorskip("safetensors")
    a = every_layer_net()
    cr.save(a, tmp_path / "a.safetensors")
    b = every_layer_net()
    for p in b.parameters():
        p.data[...] = 0
    cr.load(tmp_path / "a.safetensors", into=b)
    assert_same_state(a, b)


@pytest.mark.skipif(not hasattr(nn, "Conv2d"), reason="chainrule.nn has no convolutional layers")
def test_convolutional_networks_round_trip():
    cr.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    bn.running_mean[...] = np.arange(4) / 10
    nets = [
        (
            nn.Sequential(
                nn.Unflatten(1, (2, 20)),
                nn.Conv1d(2, 6, 5, padding=2, groups=2),
                nn.BatchNorm1d(6),
                nn.ReLU(),
                nn.MaxPool1d(3, stride=2, padding=1),
                nn.Conv1d(6, 4, 3, dilation=2, bias=False),
                nn.AvgPool1d(2),
                nn.AdaptiveAvgPool1d(3),
                nn.Flatten(),
                nn.Linear(12, 3),
            ),
            (40,),
        ),
        (
            nn.Sequential(
                nn.Conv2d(1, 4, 3, padding="same"),
                bn,
                nn.GELU(),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.Conv2d(4, 4, (3, 2), stride=(1, 2)),
                nn.AvgPool2d(2, divisor_override=3),
                nn.AdaptiveAvgPool2d((2, None)),
                nn.Flatten(),
            ),
            (1, 11, 11),
        ),
    ]
    for net, shape in nets:
        for dtype in (np.float32, np.float64):
            net.to(dtype)
            tnet = to_torch(net)
            back = from_torch(tnet)
            assert_same_state(net, back)
            X = np.random.default_rng(0).normal(size=(3,) + shape).astype(dtype)
            net.eval()
            tnet.eval()
            back.eval()
            ref = net(X).data
            np.testing.assert_allclose(
                tnet(torch.from_numpy(X)).detach().numpy(),
                ref,
                rtol=0,
                atol=1e-5 if dtype == np.float32 else 1e-12,
            )
            np.testing.assert_array_equal(back(X).data, ref)
