"""Reliability: nothing the user has is lost, and hostile input ends in one clear line.

One test (or more) per kind of failure found by the hostile-input review (issue 11):
1 output == input, 5 leftovers and I/O failures, 8 formula cells ... The fuzzing of the
readers lives in test_reliability_fuzz.py, the engine's guarantees in test_reliability_engine.py.
"""

from __future__ import annotations

import errno
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
from chainrule.errors import ConfigError, DataError

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
    rows = ["a,b,y"] + [f"{rng.normal():.4f},{rng.normal():.4f},{'yes' if i % 2 else 'no'}"
                        for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    return path


# --- kind 1: an output path that is an input -------------------------------------------------

def test_train_refuses_out_equal_to_data_also_through_links(capsys, data, tmp_path):
    before = data.read_bytes()
    err = one_line_error(capsys, "train", "--data", data, "--target", "y", "--out", data)
    assert "--out" in err and "same file as the input --data" in err
    os.symlink(data, tmp_path / "link.csv")
    os.link(data, tmp_path / "hard.csv")
    for other in (tmp_path / "link.csv", tmp_path / "hard.csv",
                  tmp_path / "sub" / ".." / "d.csv"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        err = one_line_error(capsys, "train", "--data", data, "--target", "y", "--out", other)
        assert "same file as the input --data" in err
    err = one_line_error(capsys, "train", "--data", data, "--target", "y",
                         "--out", tmp_path / "m.safetensors", "--report", tmp_path / "m.safetensors")
    assert "--report" in err and "same file as --out" in err
    assert data.read_bytes() == before


def test_predict_and_report_refuse_writing_over_their_inputs(capsys, data, tmp_path):
    model = tmp_path / "m.safetensors"
    assert cli(capsys, "train", "--data", data, "--target", "y", "--out", model, "--epochs", "2",
               "-q")[0] == 0
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
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
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
    the file must load (old or new weights) and the folder must hold nothing else."""
    script = textwrap.dedent(f"""
        import sys, chainrule as cr
        sys.path.insert(0, {os.getcwd()!r})
        cr.manual_seed(0)
        model = cr.nn.Sequential(cr.nn.Linear(1000, 1000))
        print("ready", flush=True)
        i = 0
        while True:
            model[0].bias.data[:] = i
            cr.save(model, {str(tmp_path / 'm.safetensors')!r})
            i += 1
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = np.random.default_rng(0)
    for trial in range(6):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(0.05 + 0.3 * rng.random())
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        names = os.listdir(tmp_path)
        if not names:  # killed before the first save finished
            continue
        assert names == ["m.safetensors"], names
        model = cr.load(tmp_path / "m.safetensors")
        b = model[0].bias.data
        assert np.all(b == b[0])


# --- kind 8: spreadsheet formulas in prediction files ----------------------------------------

def test_formula_cells_are_written_as_text_unless_raw(capsys, tmp_path):
    out = tmp_path / "p.csv"
    cr.data.write_table(out, {"id": ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3", "plain"],
                              "v": [-1.5, 2.0, -3.0, 4.0, 5.0]})
    lines = out.read_text().splitlines()
    assert lines[1].startswith("'=cmd") and lines[2] == "'+1+1,2.0"
    assert lines[3] == "'@SUM(A1),-3.0" and lines[4] == "'-2+3,4.0" and lines[5] == "plain,5.0"
    cr.data.write_table(out, {"id": ["=1+1"]}, safe=False)
    assert out.read_text().splitlines()[1] == "=1+1"
