"""After a plain ``pip install chainrule`` (numpy only) the ``chainrule`` command says in one
line which extra to install, instead of a ModuleNotFoundError traceback.

A fresh virtual environment gets numpy (linked from this one, so no download) and the
project's wheel, built from a copy of the working tree and installed with ``pip install
--no-deps`` (this environment's pip and setuptools do the building and installing).
"""

import glob
import os
import shutil
import subprocess
import sys

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_plain_install_says_which_extra_the_command_needs(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # numpy alone: its package, its bundled libraries and its metadata, nothing else from here
    only = tmp_path / "numpy_only"
    only.mkdir()
    here = os.path.dirname(os.path.dirname(numpy.__file__))
    for entry in [
        os.path.dirname(numpy.__file__),
        *glob.glob(os.path.join(here, "numpy.libs")),
        *glob.glob(os.path.join(here, "numpy-*.dist-info")),
    ]:
        os.symlink(entry, only / os.path.basename(entry))
    with open(os.path.join(site, "numpy_only.pth"), "w") as f:
        f.write(str(only) + "\n")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    shutil.copytree(
        os.path.join(ROOT, "chainrule"),
        src / "chainrule",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            tmp_path / "dist",
            src,
        ],
        check=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    wheel = glob.glob(str(tmp_path / "dist" / "chainrule-*.whl"))
    assert len(wheel) == 1, wheel
    subprocess.run(
        [*pip, "--python", py, "install", "--no-deps", "--no-index", wheel[0]],
        check=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    check = subprocess.run(
        [
            py,
            "-c",
            "import numpy, chainrule, importlib.util as u; "
            "print([m for m in ('click', 'rich', 'sklearn', 'safetensors') "
            "if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert check.returncode == 0 and check.stdout.strip() == "[]", check.stderr
    for command in (
        [venv / "bin" / "chainrule", "train", "--dataset", "spiral"],
        [venv / "bin" / "chainrule", "--help"],
        [py, "-m", "chainrule", "datasets"],
    ):
        proc = subprocess.run(
            command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
        )
        assert proc.returncode == 1, (command, proc.returncode, proc.stderr)
        err = proc.stderr.strip()
        assert "\n" not in err and "Traceback" not in err, err
        assert err.startswith("error: ") and 'pip install "chainrule[cli]"' in err, err
