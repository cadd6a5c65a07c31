"""Smoke test of benchmarks/bench_training.py: it runs and writes the JSON and markdown it promises.

Timings are never asserted (the machine is shared and noisy); only the structure is.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_training.py"

FAST = [
    "--quick",
    "--cases",
    "tiny_b10",
    "--rounds",
    "1",
    "--target-time",
    "0.01",
    "--settle",
    "0",
    "--memory-steps",
    "2",
]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def _has(module):
    return importlib.util.find_spec(module) is not None


def test_quick_run_writes_json_and_markdown(bench, tmp_path):
    # memory for chainrule, and PyTorch when it is there (subprocesses: keep them few)
    fws = ["chainrule", "compiled", "numpy"] + (["torch"] if _has("torch") else [])
    bench.main(FAST + ["--frameworks", ",".join(fws), "--outdir", str(tmp_path)])
    data = json.loads((tmp_path / "latest.json").read_text())
    md = (tmp_path / "latest.md").read_text()

    m = data["machine"]
    for key in (
        "cpu_model",
        "cpu_count",
        "numpy",
        "torch",
        "sklearn",
        "blas_threads",
        "threadpools",
        "env",
        "loadavg",
    ):
        assert key in m
    assert data["gemm_peak_gflops"]["median"] > 0
    assert data["settings"]["quick"] is True
    assert data["settings"]["process_per_library"] is True  # the default: a worker per library
    names = data["settings"]["frameworks"]
    assert names[0] == "chainrule" and ("torch" in names) == _has("torch")

    (case,) = data["cases"]
    assert case["case"] == "tiny_b10" and case["batch"] == 10 and case["sizes"] == [2, 16, 16, 2]
    # GEMM FLOPs of a step: 6·B·Σ in·out minus the first layer's input gradient 2·B·in·out
    assert case["flops_per_step"] == 6 * 10 * (2 * 16 + 16 * 16 + 16 * 2) - 2 * 10 * 2 * 16
    for n in names:
        assert case["median_samples_per_s"][n] > 0
        assert len(case["samples_per_s"][n]) == 1
        assert case["steps_per_measurement"][n] >= 1
        assert case["gflops"][n] > 0 and case["peak_fraction"][n] > 0
        assert case["peak_fraction_paired"][n] > 0
        mem = case["memory"]["by_framework"][n]
        assert mem is not None and mem["rss_delta_kb"] >= 0 and mem["peak_kb"] >= mem["baseline_kb"]
    assert case["memory"]["by_framework"]["chainrule"]["tracemalloc_peak_kb"] > 0
    assert "chainrule/numpy" in case["ratios"]
    assert set(case["verdicts"]) >= {"vs_sklearn", "memory"}
    if "torch" in names:
        assert case["ratios"]["chainrule/torch"]["median"] > 0
        assert case["verdicts"]["vs_torch"]["target"] == 10.0  # the compiled step's target
        assert case["ratios"]["compiled/torch"]["median"] > 0
        assert case["agreement"]["reference"] == "torch"
        assert case["agreement"]["max_abs_diff"]["chainrule"] < 1e-4  # the same computation
        assert case["agreement"]["max_abs_diff"]["compiled"] < 1e-4
        assert case["memory"]["by_framework"]["torch"]["tracemalloc_peak_kb"] is None
    assert len(case["round_gemm_gflops"]) == 1 and case["round_gemm_gflops"][0] > 0
    assert "| 2-16-16-2 tanh, batch 10 |" in md and "compiled/PyTorch" in md
    assert "% paired)" in md
    assert case["verdicts"]["framework"] == "compiled"


def test_missing_torch_is_skipped(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench.TorchRunner, "available", staticmethod(lambda: False))
    bench.main(
        FAST + ["--frameworks", "chainrule,torch,numpy", "--no-memory", "--outdir", str(tmp_path)]
    )
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["settings"]["frameworks"] == ["chainrule", "numpy"]
    assert data["settings"]["skipped_frameworks"] == ["torch"]
    (case,) = data["cases"]
    assert "torch" not in case["median_samples_per_s"]
    assert "chainrule/torch" not in case["ratios"]
    assert case["verdicts"]["vs_torch"]["met"] is None and case["memory"] is None
    assert case["agreement"]["reference"] == "numpy"
    lines = (tmp_path / "latest.md").read_text().splitlines()
    row = next(line for line in lines if "batch 10" in line)
    assert "| – |" in row  # the PyTorch column is empty


def test_all_libraries_in_one_process_still_runs(bench, tmp_path):
    bench.main(
        FAST
        + ["--frameworks", "chainrule,numpy", "--no-memory", "--no-process-per-library"]
        + ["--outdir", str(tmp_path)]
    )
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["settings"]["process_per_library"] is False
    (case,) = data["cases"]
    assert case["median_samples_per_s"]["chainrule"] > 0
    assert case["agreement"]["max_abs_diff"]["chainrule"] < 1e-4
    assert "(all in one process)" in (tmp_path / "latest.md").read_text()


def test_peak_target_is_judged_on_per_round_fractions_and_both_are_kept(bench):
    # rounds in a slow spell: a step at 60 GFLOP/s while the GEMM runs at 100 in that round is at
    # 60 % of it, although 60 / 136 (the run's median peak, timed in fast spells) is 44 %
    flops = bench.CASES["mlp784_b128"].flops_per_step()
    res = {
        "case": "mlp784_b128",
        "median_samples_per_s": {"compiled": 60e9 / flops * 128},
        "gflops": {"compiled": 60.0},
        "peak_fraction_paired": {"compiled": 0.6},
        "ratios": {},
    }
    v = bench.verdicts(res, 136.0)["peak_fraction"]
    assert v["value"] == 0.6 and v["met"] is True
    assert v["of_run_peak"] == pytest.approx(60 / 136)
    res["peak_fraction_paired"] = {"compiled": 0.45}
    assert bench.verdicts(res, 100.0)["peak_fraction"]["met"] is False  # not the run's 60 %
    del res["peak_fraction_paired"]  # results written before the rounds timed a GEMM
    assert bench.verdicts(res, 100.0)["peak_fraction"]["value"] == pytest.approx(0.6)


def test_case_selection(bench):
    assert [c.name for c in bench.select_cases("tiny")] == ["tiny_b10", "tiny_b1000"]
    assert [c.name for c in bench.select_cases("mlp784_b1,wide1024")] == [
        "mlp784_b1",
        "wide1024_b256",
    ]
    assert len(bench.select_cases("all")) == 6
    with pytest.raises(SystemExit):
        bench.select_cases("nope")


@pytest.fixture
def step_min():
    """benchmarks/bench_step_min.py as a module (its directory on sys.path while the test runs)."""
    import pathlib

    bench_dir = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench_dir))
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_step_min", bench_dir / "bench_step_min.py"
        )
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(bench_dir))


def test_step_minimum_script_times_each_framework(capsys, step_min):
    out = step_min.main(["tiny_b10", "chainrule,compiled", "--windows", "3", "--window-s", "0.002"])
    assert set(out) == {"chainrule", "compiled"}
    for v in out.values():
        assert 0 < v["min"] <= v["p25"] <= v["median"]
    assert "tiny_b10 compiled" in capsys.readouterr().out


def test_step_minimum_script_gives_scikit_learn_windows_as_long_as_the_tables(
    monkeypatch, step_min
):
    # partial_fit pays ~3 ms per call: a 15 ms window would charge it to scikit-learn's step
    pytest.importorskip("sklearn")
    bt = step_min.bt
    asked = {}

    def calibrate(runner, target_s, *a, **k):
        asked[runner.name] = target_s
        return 2

    monkeypatch.setattr(bt, "calibrate", calibrate)
    step_min.main(["tiny_b10", "compiled,sklearn", "--windows", "2", "--window-s", "0.002"])
    assert asked["compiled"] == 0.002
    assert asked["sklearn"] == bt.SklearnRunner.min_window_s >= 0.3
