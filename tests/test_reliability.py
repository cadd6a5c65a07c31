"""Reliability: nothing the user has is lost, and hostile input ends in one clear line.

One test (or more) per kind of failure found by the hostile-input review (issue 11):
1 output == input, 5 leftovers and I/O failures, 8 formula cells ... The fuzzing of the
readers lives in test_reliability_fuzz.py, the engine's guarantees in test_reliability_engine.py.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule._files import check_outputs, clean_stale, write_atomic
from chainrule.errors import ConfigError, DataError, TrainingError

pytest.importorskip("click")
pytest.importorskip("safetensors")

from chainrule.cli import main  # noqa: E402


def cli(capsys, *args):
    """Run the command in this process; return (exit status, stdout, stderr)."""
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(capsys, *args):
    rc, out, err = cli(capsys, *args)
    assert rc != 0, out
    err = err.strip()
    assert err.startswith("error: ") and "\n" not in err and "internal error" not in err, err
    return err


@pytest.fixture()
def data(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.csv"
    rows = ["a,b,y"] + [
        f"{rng.normal():.4f},{rng.normal():.4f},{'yes' if i % 2 else 'no'}" for i in range(40)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


# --- kind 1: an output path that is an input -------------------------------------------------


def test_train_refuses_out_equal_to_data_also_through_links(capsys, data, tmp_path):
    before = data.read_bytes()
    err = one_line_error(capsys, "train", "--data", data, "--target", "y", "--out", data)
    assert "--out" in err and "same file as the input --data" in err
    os.symlink(data, tmp_path / "link.csv")
    os.link(data, tmp_path / "hard.csv")
    for other in (tmp_path / "link.csv", tmp_path / "hard.csv", tmp_path / "sub" / ".." / "d.csv"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        err = one_line_error(capsys, "train", "--data", data, "--target", "y", "--out", other)
        assert "same file as the input --data" in err
    err = one_line_error(
        capsys,
        "train",
        "--data",
        data,
        "--target",
        "y",
        "--out",
        tmp_path / "m.safetensors",
        "--report",
        tmp_path / "m.safetensors",
    )
    assert "--report" in err and "same file as --out" in err
    assert data.read_bytes() == before


def test_predict_and_report_refuse_writing_over_their_inputs(capsys, data, tmp_path):
    model = tmp_path / "m.safetensors"
    assert (
        cli(
            capsys, "train", "--data", data, "--target", "y", "--out", model, "--epochs", "2", "-q"
        )[0]
        == 0
    )
    saved = model.read_bytes(), data.read_bytes()
    err = one_line_error(capsys, "predict", model, "--data", data, "--output", data)
    assert "--output" in err and "--data" in err
    err = one_line_error(capsys, "predict", model, "--data", data, "--output", model)
    assert "input MODEL" in err
    err = one_line_error(capsys, "report", model, "--data", data, "--out", model)
    assert "--out" in err and "input MODEL" in err
    assert (model.read_bytes(), data.read_bytes()) == saved


def test_check_outputs_directly(tmp_path):
    a = tmp_path / "a"
    a.write_text("x")
    check_outputs({"--data": a}, {"--out": tmp_path / "b", "--report": None})
    with pytest.raises(ConfigError, match="same file"):
        check_outputs({"--data": a}, {"--out": str(a)})
    with pytest.raises(ConfigError, match="--y .* is the same file as --x"):
        check_outputs({}, {"--x": tmp_path / "new", "--y": tmp_path / "." / "new"})


# --- kind 5: leftovers and I/O failures -------------------------------------------------------


def test_full_disk_and_folder_names_are_one_line_errors(tmp_path, monkeypatch):
    import chainrule._files as files

    target = tmp_path / "out.csv"
    target.write_text("old")

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "write", full)
    with pytest.raises(DataError, match=r"^cannot write .*out.csv: no space left on device$"):
        cr.data.write_table(target, {"a": [1, 2]})
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]
    with pytest.raises(DataError, match="is a folder"):
        write_atomic(tmp_path, b"x", DataError)
    with pytest.raises(DataError, match="does not exist"):
        write_atomic(tmp_path / "no" / "x", b"x", DataError)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        write_atomic(fifo, b"x", DataError)


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(proc.stdout)
    stale = tmp_path / f".m.safetensors.{dead}-0000.chainrule-tmp"
    stale.write_bytes(b"x" * 100)
    alive = tmp_path / f".m.safetensors.{os.getpid()}-0000.chainrule-tmp"
    alive.write_bytes(b"y")
    write_atomic(tmp_path / "m.safetensors", b"new")
    assert not stale.exists() and alive.exists()
    assert clean_stale(str(tmp_path)) == []


def test_kill_9_during_saves_leaves_the_old_file_or_the_new_one_and_nothing_else(tmp_path):
    """A child saves a 4 MB model again and again; we kill -9 it at varied moments. Each time
    the file must load (old or new weights), and the folder may hold nothing else but, when the
    kill fell between naming the finished file and moving it over (two system calls), that
    file under the dead writer's process id, which the next write into the folder removes."""
    script = textwrap.dedent(f"""
        import sys, chainrule as cr
        sys.path.insert(0, {os.getcwd()!r})
        cr.manual_seed(0)
        model = cr.nn.Sequential(cr.nn.Linear(1000, 1000))
        print("ready", flush=True)
        i = 0
        while True:
            model[0].bias.data[:] = i
            cr.save(model, {str(tmp_path / "m.safetensors")!r})
            i += 1
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = np.random.default_rng(0)
    for _ in range(6):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(0.05 + 0.3 * rng.random())
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        names = sorted(os.listdir(tmp_path))
        if not names:  # killed before the first save finished
            continue
        stale = [n for n in names if n != "m.safetensors"]
        assert "m.safetensors" in names and len(stale) <= 1, names
        for n in stale:
            pid = int(n.split(".")[3].split("-")[0])
            assert n.startswith(".m.safetensors.") and n.endswith(".chainrule-tmp"), n
            assert pid == child.pid, (n, child.pid)
        model = cr.load(tmp_path / "m.safetensors")
        b = model[0].bias.data
        assert np.all(b == b[0])
        cr.save(model, tmp_path / "m.safetensors")  # the next write removes a dead writer's file
        assert os.listdir(tmp_path) == ["m.safetensors"]
    # (that moment is two system calls long: the removal, on a file left there by hand)
    (tmp_path / f".m.safetensors.{child.pid}-0123abcd.chainrule-tmp").write_bytes(b"half")
    cr.save(model, tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == ["m.safetensors"]


# --- kind 8: spreadsheet formulas in prediction files ----------------------------------------


def test_formula_cells_are_written_as_text_unless_raw(capsys, tmp_path):
    out = tmp_path / "p.csv"
    cr.data.write_table(
        out,
        {
            "id": ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3", "plain"],
            "v": [-1.5, 2.0, -3.0, 4.0, 5.0],
        },
    )
    lines = out.read_text().splitlines()
    assert lines[1].startswith("'=cmd") and lines[2] == "'+1+1,2.0"
    assert lines[3] == "'@SUM(A1),-3.0" and lines[4] == "'-2+3,4.0" and lines[5] == "plain,5.0"
    cr.data.write_table(out, {"id": ["=1+1"]}, safe=False)
    assert out.read_text().splitlines()[1] == "=1+1"


# --- kind 4: hostile model files ---------------------------------------------------------------


def _model_file(path, tensors=None, **meta_override):
    import json

    from safetensors.numpy import save

    tensors = (
        tensors
        if tensors is not None
        else {"0.weight": np.zeros((2, 3), np.float32), "0.bias": np.zeros(2, np.float32)}
    )
    arch = {
        "type": "Sequential",
        "children": [
            {"type": "Linear", "config": {"in_features": 3, "out_features": 2, "bias": True}}
        ],
    }
    meta = {"format": "chainrule", "format_version": "1", "architecture": json.dumps(arch)}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in meta_override.items()})
    path.write_bytes(save(tensors, metadata=meta))
    return path


@pytest.mark.parametrize(
    "meta, message",
    [
        (
            {
                "architecture": {
                    "type": "Sequential",
                    "children": [
                        {
                            "type": "Linear",
                            "config": {"in_features": 100000, "out_features": 100000, "bias": True},
                        }
                    ],
                }
            },
            "would hold about 10,000,100,000 values but the file has 8",
        ),
        ({"architecture": "[" * 100000 + "]" * 100000}, "nested more than 64 levels deep"),
        (
            {
                "architecture": {
                    "type": "Sequential",
                    "children": [
                        {"type": "Linear", "config": {"in_features": "3", "out_features": 2}}
                    ],
                }
            },
            "in_features is '3'; expected a whole number",
        ),
        ({"architecture": {"type": "Module"}}, "unknown layer type 'Module'"),
        ({"architecture": {"type": "Sequential", "children": {"a": 1}}}, "expected a list"),
        (
            {"preprocessing": [1, 2]},
            "the preprocessing metadata is a JSON list; expected an object",
        ),
        (
            {"preprocessing": {"task": "classification", "label_names": ["a", "b", "c"]}},
            "label_names has 3 labels but the model has 2 outputs",
        ),
        ({"preprocessing": {"loss": "Module"}}, "preprocessing.loss is 'Module'; expected one of"),
        (
            {
                "preprocessing": {
                    "feature_names": ["a", "b", "c"],
                    "standardizer": {"mean": [0, 0], "scale": [1, 1]},
                }
            },
            "standardizer.mean has 2 numbers; expected 3",
        ),
        ({"metrics": {"train": "x"}}, "metrics.train is 'x'"),
        ({"architecture": "not json"}, "the architecture metadata is not valid JSON"),
    ],
)
def test_hostile_metadata_is_refused_before_anything_is_built(tmp_path, meta, message):
    path = _model_file(tmp_path / "m.safetensors", **meta)
    with pytest.raises(cr.ModelFileError, match=message.replace("(", r"\(").replace("[", r"\[")):
        cr.load(path)


def test_nan_weights_fifo_and_lying_headers_are_refused(tmp_path):
    import json
    import struct

    bad = {"0.weight": np.zeros((2, 3), np.float32), "0.bias": np.array([0, np.inf], np.float32)}
    with pytest.raises(cr.ModelFileError, match=r"weight 0.bias\[1\] is inf"):
        cr.load(_model_file(tmp_path / "nan.safetensors", bad))
    os.mkfifo(tmp_path / "fifo.safetensors")
    start = time.perf_counter()
    with pytest.raises(cr.ModelFileError, match="not a regular file"):
        cr.load(tmp_path / "fifo.safetensors")
    assert time.perf_counter() - start < 5
    raw = _model_file(tmp_path / "ok.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["0.weight"]["shape"] = [100000, 100000]
    text = json.dumps(header).encode()
    (tmp_path / "lie.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    with pytest.raises(
        cr.ModelFileError, match=r"needs 40000000000 bytes but the file gives it 24"
    ):
        cr.load(tmp_path / "lie.safetensors")


def test_predict_refuses_a_model_with_nan_weights(capsys, data, tmp_path):
    from safetensors.numpy import load, save

    model = tmp_path / "m.safetensors"
    assert (
        cli(
            capsys, "train", "--data", data, "--target", "y", "--out", model, "--epochs", "1", "-q"
        )[0]
        == 0
    )
    from safetensors import safe_open

    with safe_open(str(model), framework="numpy") as f:
        meta = f.metadata()
    tensors = load(model.read_bytes())
    first = sorted(tensors)[0]
    tensors[first].reshape(-1)[0] = np.nan
    model.write_bytes(save(tensors, metadata=meta))
    err = one_line_error(capsys, "predict", model, "--data", data)
    assert "NaN or infinite weights" in err


# --- kind 9: checkpoints and resume ------------------------------------------------------------


def _run(X, y, **kw):
    cr.manual_seed(0)
    model = cr.nn.Sequential(
        cr.nn.Linear(3, 8), cr.nn.ReLU(), cr.nn.Dropout(0.2), cr.nn.Linear(8, 2)
    )
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    sched = cr.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    history = cr.fit(
        model,
        cr.nn.CrossEntropyLoss(),
        opt,
        X,
        y,
        batch_size=16,
        scheduler=sched,
        validation=0.2,
        callbacks=[cr.train.EarlyStopping(patience=50)],
        **kw,
    )
    return model, history


def test_fit_resumed_from_a_checkpoint_ends_with_the_same_weights_bit_for_bit(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    full, h_full = _run(X, y, epochs=10)
    ckpt = tmp_path / "run.ckpt"
    _run(X, y, epochs=4, checkpoint=ckpt)
    resumed, h_res = _run(X, y, epochs=10, resume=ckpt)
    diff = max(
        float(np.abs(a - b).max())
        for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True)
    )
    assert diff == 0.0
    assert h_full.history["loss"] == h_res.history["loss"] and h_res.epochs == list(range(1, 11))
    assert os.listdir(tmp_path) == ["run.ckpt"]
    with pytest.raises(cr.ModelFileError, match="training data differ"):
        _run(X[::-1].copy(), y, epochs=10, resume=ckpt)
    with pytest.raises(cr.ModelFileError, match="batch_size 16, this run has 8"):
        cr.manual_seed(0)
        m = cr.nn.Sequential(
            cr.nn.Linear(3, 8), cr.nn.ReLU(), cr.nn.Dropout(0.2), cr.nn.Linear(8, 2)
        )
        cr.fit(
            m,
            cr.nn.CrossEntropyLoss(),
            cr.optim.Adam(m.parameters()),
            X,
            y,
            epochs=10,
            batch_size=8,
            validation=0.2,
            resume=ckpt,
        )


def test_command_resume_matches_the_uninterrupted_run(capsys, tmp_path):
    common = ["--dataset", "spiral", "--seed", "3", "--patience", "50", "-q"]
    assert cli(capsys, "train", *common, "--epochs", "8", "--out", tmp_path / "full.st")[0] == 0
    assert (
        cli(
            capsys,
            "train",
            *common,
            "--epochs",
            "3",
            "--out",
            tmp_path / "part.st",
            "--checkpoint",
            tmp_path / "run.ckpt",
        )[0]
        == 0
    )
    assert (
        cli(
            capsys,
            "train",
            "--resume",
            tmp_path / "run.ckpt",
            "--epochs",
            "8",
            "--out",
            tmp_path / "resumed.st",
        )[0]
        == 0
    )
    a, b = cr.load(tmp_path / "full.st").state_dict(), cr.load(tmp_path / "resumed.st").state_dict()
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    err = one_line_error(capsys, "train", "--resume", tmp_path / "run.ckpt", "--seed", "4")
    assert "--seed 4 disagrees with the checkpoint" in err
    err = one_line_error(capsys, "train", "--resume", tmp_path / "full.st")
    assert "expects a checkpoint" in err


def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chainrule.cli",
            "train",
            "--dataset",
            "xor",
            "--epochs",
            "1000",
            "--out",
            str(tmp_path / "m.safetensors"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    lines = 0
    for line in proc.stdout:  # 'epoch 1/1000' and then every 100 epochs
        lines += line.startswith("epoch")
        if lines == 2:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    saved = tmp_path / "m.checkpoint.safetensors"
    assert "error: interrupted after epoch" in err
    assert f"go on with: chainrule train --resume {saved}" in err
    assert sorted(os.listdir(tmp_path)) == ["m.checkpoint.safetensors"]


# --- kind 6: numeric trouble in words, no leaked warnings --------------------------------------


def test_huge_values_are_named_not_warned(capsys, tmp_path):
    import warnings

    big_target = tmp_path / "t.csv"
    big_target.write_text(
        "a,y\n" + "".join(f"{i},{1e308 if i == 3 else i * 1.5}\n" for i in range(30))
    )
    big_feature = tmp_path / "f.csv"
    big_feature.write_text(
        "a,y\n" + "".join(f"{1e39 if i == 3 else i},{i * 1.5}\n" for i in range(30))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a leaked numpy warning fails the test
        err = one_line_error(
            capsys, "train", "--data", big_target, "--target", "y", "--out", tmp_path / "m.st"
        )
        assert "column 'y', row 4" in err and "1e+308 is too large" in err
        assert "learning rate" not in err
        err = one_line_error(
            capsys, "train", "--data", big_feature, "--target", "y", "--out", tmp_path / "m.st"
        )
        assert "column 'a', row 4" in err and "too large" in err
        with pytest.raises(DataError, match="column 1 holds values as large as 1e\\+308"):
            cr.data.Standardizer().fit(np.array([[1e308], [-1e308]]))


def test_divergence_names_the_epoch_and_what_diverged():
    import warnings

    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(2, 4), cr.nn.Linear(4, 1))
    X = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    y = X[:, :1] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(
            TrainingError,
            match=r"at epoch \d+, step \d+ of 4: the weights "
            r"('.*' hold (nan|inf|-inf) values|grew to .* \(in '.*'\)), so training diverged",
        ):
            cr.fit(
                model,
                cr.nn.MSELoss(),
                cr.optim.SGD(model.parameters(), lr=1e6),
                X,
                y,
                epochs=50,
                batch_size=16,
                metrics=(),
            )


# --- kind 7: sizes checked before allocating -----------------------------------------------------


def test_resource_bombs_are_refused_up_front(capsys, tmp_path):
    import zipfile

    err = one_line_error(
        capsys,
        "train",
        "--dataset",
        "spiral",
        "--hidden",
        "100000,100000",
        "--out",
        tmp_path / "m.st",
    )
    assert "Linear(100000, 100000)" in err and "GB of memory but only" in err
    err = one_line_error(
        capsys,
        "train",
        "--dataset",
        "spiral",
        "--samples",
        "10000000000000",
        "--out",
        tmp_path / "m.st",
    )
    assert "10,000,000,000,000 samples needs" in err and "TB of memory" in err
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (12000, 12000)}
    )
    bomb = tmp_path / "bomb.npz"
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z,
        z.open("X.npy", "w", force_zip64=True) as f,
    ):
        f.write(header.getvalue())
        zeros = b"\0" * (1 << 20)
        for _ in range(100):
            f.write(zeros)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(DataError, match="decompression bomb|of memory but only"):
        cr.data.read_table(bomb)


# --- kind 8: other inputs ----------------------------------------------------------------------


def test_complex_npz_list_parquet_uint64_and_target_as_id(capsys, tmp_path):
    np.savez(tmp_path / "c.npz", X=np.array([[1 + 2j, 3], [4, 5]]), y=np.array([0, 1]))
    with pytest.raises(
        DataError,
        match=r"array 'X' in .*c.npz holds complex numbers \(element "
        r"\(0, 0\) is \(1\+2j\)\)",
    ):
        cr.data.read_table(tmp_path / "c.npz")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": [[1, 2], [3]], "y": [0, 1]}), tmp_path / "l.parquet")
    with pytest.raises(DataError, match="column 'a' of .*l.parquet has Parquet type list"):
        cr.data.read_table(tmp_path / "l.parquet")
    pq.write_table(
        pa.table({"a": pa.array([2**64 - 1, 5], pa.uint64()), "y": [0, 1]}), tmp_path / "u.parquet"
    )
    assert cr.data.read_table(tmp_path / "u.parquet").data["a"][0] == float(2**64 - 1)
    csv = tmp_path / "d.csv"
    csv.write_text("a,id,y\n1,p,0\n2,q,1\n3,r,0\n")
    err = one_line_error(
        capsys,
        "train",
        "--data",
        csv,
        "--target",
        "y",
        "--id-column",
        "y",
        "--out",
        tmp_path / "m.st",
    )
    assert "column 'y' of" in err and "both the target and an id column" in err
