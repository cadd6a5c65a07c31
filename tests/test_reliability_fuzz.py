"""Fuzzing every file reader and the model loader: random bytes and mutated valid files.

Whatever the bytes, reading either works or raises one of chainrule's own errors
(ChainruleError: DataError, ModelFileError, ...) with a one-line message, within bounded time and
memory. Counts of examples (and what the fuzzing found) are in the README's reliability section.
"""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import tempfile
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import ChainruleError

hypothesis = pytest.importorskip("hypothesis")
pytest.importorskip("safetensors")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(
    max_examples=int(os.environ.get("CHAINRULE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=not os.environ.get("CHAINRULE_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECONDS = 10.0  # per example, generous for a loaded machine
GROWTH = 512 << 20  # the process may not grow by more than this while reading one file

_DIR = tempfile.mkdtemp(prefix="chainrule-fuzz-")


def _rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _bounded(fn, *args):
    """Run fn; only chainrule's errors may escape, with one-line messages, in bounded time and
    memory."""
    before, start = _rss(), time.perf_counter()
    try:
        fn(*args)
    except ChainruleError as err:
        assert "\n" not in str(err).strip(), str(err)
    assert time.perf_counter() - start < SECONDS
    assert _rss() - before < GROWTH


def _write(name, data: bytes) -> str:
    path = os.path.join(_DIR, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _read_table(path):
    table = cr.data.read_table(path)
    cols = list(table.columns)
    cr.data.prepare(table, target=cols[-1], drop_missing=True)


def _mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for pos, value, kind in edits:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] = value
        elif kind == 1:
            del b[i]
        elif kind == 2:
            b.insert(i, value)
        else:
            del b[i:]
    return bytes(b)


EDITS = st.lists(
    st.tuples(st.integers(0, 1 << 30), st.integers(0, 255), st.integers(0, 3)),
    min_size=1,
    max_size=8,
)


# --- valid seeds ---------------------------------------------------------------------------------


def _valid_csv() -> bytes:
    return b"a,b,label\n1.5,2,x\n-3,4e2,y\n5,6,x\n7,,y\n"


def _valid_npz() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(
        buf, X=np.arange(12, dtype=np.float32).reshape(4, 3), y=np.array([0, 1, 0, 1])
    )
    return buf.getvalue()


def _valid_parquet() -> bytes:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "b": ["u", "v", "w"], "y": [0, 1, 0]}), sink)
    return sink.getvalue().to_pybytes()


def _valid_model() -> bytes:

    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Linear(4, 2))
    path = os.path.join(_DIR, "seed.safetensors")
    cr.save(
        model,
        path,
        preprocessing={
            "feature_names": ["a", "b", "c"],
            "task": "classification",
            "label_names": ["x", "y"],
            "loss": "cross_entropy",
            "standardizer": {"mean": [0, 0, 0], "scale": [1, 1, 1]},
        },
        metrics={"train": {"accuracy": 0.5}},
        training={
            "epochs": 3,
            "history": {"epochs": [1, 2, 3], "history": {"loss": [1, 0.5, 0.2]}},
        },
    )
    with open(path, "rb") as f:
        return f.read()


_SEEDS = {}


def _seed(kind):
    if kind not in _SEEDS:
        _SEEDS[kind] = {
            "csv": _valid_csv,
            "npz": _valid_npz,
            "parquet": _valid_parquet,
            "safetensors": _valid_model,
        }[kind]()
    return _SEEDS[kind]


# --- data files ----------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=2000), ext=st.sampled_from([".csv", ".tsv", ".npz", ".parquet"]))
def test_random_bytes_as_data_files(data, ext):
    _bounded(_read_table, _write("random" + ext, data))


@FUZZ
@given(edits=EDITS, kind=st.sampled_from(["csv", "npz", "parquet"]))
def test_mutated_data_files(edits, kind):
    _bounded(_read_table, _write("mutated." + kind, _mutate(_seed(kind), edits)))


@FUZZ
@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                st.text(max_size=8),
                st.floats(allow_nan=True, allow_infinity=True).map(repr),
                st.sampled_from(["=1+1", "1e308", "-1e309", "NaN", "", "1,5", "\x00", "\ufeff"]),
            ),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_csv_with_hostile_cells(rows):
    text = "a,b,y\n" + "\n".join(
        ",".join(
            c.replace(",", ";").replace("\n", " ").replace("\r", " ").replace('"', "'") for c in r
        )
        for r in rows
    )
    _bounded(_read_table, _write("cells.csv", text.encode("utf-8", "surrogatepass")))


# --- model files ---------------------------------------------------------------------------------


def _load(path):
    model, info = cr.load(path, with_info=True)
    model(np.zeros((1, 3), dtype=np.float32))


@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes_as_model_files(data):
    _bounded(_load, _write("random.safetensors", data))


@FUZZ
@given(edits=EDITS)
def test_mutated_model_files(edits):
    _bounded(_load, _write("mutated.safetensors", _mutate(_seed("safetensors"), edits)))


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 70), 1 << 70)
    | st.floats()
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    section=st.sampled_from(["architecture", "preprocessing", "training", "metrics"]),
    path=st.lists(
        st.one_of(
            st.integers(0, 3),
            st.sampled_from(
                [
                    "children",
                    "config",
                    "type",
                    "in_features",
                    "out_features",
                    "bias",
                    "label_names",
                    "standardizer",
                    "mean",
                    "scale",
                    "feature_names",
                    "loss",
                    "task",
                    "train",
                ]
            ),
        ),
        max_size=4,
    ),
    value=_JSON,
)
def test_model_metadata_with_a_field_replaced(section, path, value):
    """Replace one field anywhere in a valid file's metadata by an arbitrary JSON value."""
    from safetensors.numpy import load, save

    raw = _seed("safetensors")
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8 : 8 + n])["__metadata__"]
    doc = json.loads(meta[section])
    node, parent, key = doc, None, None
    for step in path:
        if isinstance(node, dict) and node:
            key = step if step in node else sorted(node)[hash(str(step)) % len(node)]
        elif isinstance(node, list) and node:
            key = step % len(node) if isinstance(step, int) else 0
        else:
            break
        parent, node = node, node[key]
    if parent is None:
        doc = value
    else:
        parent[key] = value
    meta[section] = json.dumps(doc)
    _bounded(_load, _write("field.safetensors", save(load(raw), metadata=meta)))


@FUZZ
@given(
    shape=st.lists(st.integers(0, 1 << 40), max_size=4),
    dtype=st.sampled_from(["F32", "F64", "I64", "U8", "BOOL", "X9", 3]),
    offsets=st.lists(st.integers(-5, 1 << 40), min_size=0, max_size=3),
)
def test_model_header_with_lying_tensor_entries(shape, dtype, offsets):
    raw = _seed("safetensors")
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    name = sorted(k for k in header if k != "__metadata__")[0]
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": offsets}
    text = json.dumps(header).encode()
    _bounded(
        _load, _write("header.safetensors", struct.pack("<Q", len(text)) + text + raw[8 + n :])
    )
