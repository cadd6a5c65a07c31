"""Tests for chainrule.data: built-in datasets, helpers, and reading/writing user files."""

import json
import os
import random
import sys

import numpy as np
import pytest

from chainrule.data import (
    DATASET_NAMES,
    Dataset,
    Standardizer,
    Table,
    batches,
    encode_labels,
    infer_task,
    list_datasets,
    load_dataset,
    one_hot,
    prepare,
    read_table,
    standardize,
    train_test_split,
    write_table,
)
from chainrule.errors import DataError

GENERATED = ("circle", "xor", "gauss", "spiral", "moons")
SKLEARN = ("iris", "wine", "breast-cancer", "digits")


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------


def test_names_and_listing_agree():
    listing = list_datasets()
    assert [row["name"] for row in listing] == list(DATASET_NAMES)
    assert set(GENERATED + SKLEARN + ("mnist1d",)) == set(DATASET_NAMES)
    for row in listing:
        assert set(row) == {
            "name",
            "n_samples",
            "n_features",
            "n_classes",
            "task",
            "description",
            "available",
        }
        assert "\n" not in row["description"] and row["description"]
        assert isinstance(row["available"], bool)


@pytest.mark.parametrize("name", GENERATED)
def test_generated_shapes_dtypes_and_listing(name):
    ds = load_dataset(name)
    row = next(r for r in list_datasets() if r["name"] == name)
    assert isinstance(ds, Dataset)
    assert ds.X.dtype == np.float32 and ds.X.shape == (row["n_samples"], 2)
    assert ds.y.dtype == np.int64 and ds.y.shape == (row["n_samples"],)
    assert set(np.unique(ds.y)) == {0, 1}
    assert ds.feature_names == ["x1", "x2"]
    assert len(ds.target_names) == row["n_classes"] == 2
    assert ds.task == row["task"] == "classification"
    assert np.all(np.isfinite(ds.X))


@pytest.mark.parametrize("name", GENERATED)
def test_generated_deterministic_by_seed(name):
    a = load_dataset(name, n_samples=101, noise=0.2, seed=3)
    b = load_dataset(name, n_samples=101, noise=0.2, seed=3)
    c = load_dataset(name, n_samples=101, noise=0.2, seed=4)
    assert a.X.shape == (101, 2)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize("name", ["circle", "gauss", "spiral", "moons"])
def test_generated_balance_without_noise(name):
    ds = load_dataset(name, n_samples=301, noise=0.0, seed=1)
    assert np.bincount(ds.y).tolist() == [150, 151]


def test_xor_balance_and_rule():
    ds = load_dataset("xor", n_samples=4000, noise=0.0, seed=2)
    counts = np.bincount(ds.y)
    assert abs(counts[0] - counts[1]) < 0.1 * len(ds.y)
    # without noise the label is exactly "same sign", and points keep 0.3 away from the axes
    np.testing.assert_array_equal(ds.y, (ds.X[:, 0] * ds.X[:, 1] >= 0).astype(np.int64))
    assert np.abs(ds.X).min() >= 0.3 - 1e-6 and np.abs(ds.X).max() <= 5.3 + 1e-5


def test_circle_geometry_follows_playground():
    ds = load_dataset("circle", n_samples=1000, noise=0.0, seed=0)
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    assert r[ds.y == 1].max() <= 2.5 + 1e-5
    assert r[ds.y == 0].min() >= 3.5 - 1e-5 and r.max() <= 5 + 1e-5
    # noise decides labels from a jittered position: some points near the edge flip class
    noisy = load_dataset("circle", n_samples=1000, noise=0.3, seed=0)
    rn = np.hypot(noisy.X[:, 0], noisy.X[:, 1])
    assert np.any((rn < 2.5) & (noisy.y == 0))


def test_spiral_and_gauss_geometry():
    m = 200
    sp = load_dataset("spiral", n_samples=2 * m, noise=0.0, seed=0)
    arm1 = sp.X[sp.y == 1].astype(np.float64)
    arm0 = sp.X[sp.y == 0].astype(np.float64)
    # the two arms are the same curve turned by pi
    np.testing.assert_allclose(np.sort(-arm0, axis=0), np.sort(arm1, axis=0), atol=1e-5)
    # Playground: point i has radius 5 i/m and angle 1.75 * 2 pi i/m, x = r sin t, y = r cos t
    r = np.hypot(arm1[:, 0], arm1[:, 1])
    i = np.round(r / 5 * m)
    np.testing.assert_allclose(np.sort(i), np.arange(m), atol=1e-3)
    far = np.argmax(r)
    t = 1.75 * 2 * np.pi * (m - 1) / m
    np.testing.assert_allclose(arm1[far], [r[far] * np.sin(t), r[far] * np.cos(t)], atol=1e-4)
    ga = load_dataset("gauss", n_samples=4000, noise=0.0, seed=0)
    np.testing.assert_allclose(ga.X[ga.y == 1].mean(0), [2, 2], atol=0.1)
    np.testing.assert_allclose(ga.X[ga.y == 0].mean(0), [-2, -2], atol=0.1)
    np.testing.assert_allclose(ga.X[ga.y == 1].var(0), [0.5, 0.5], rtol=0.1)
    wide = load_dataset("gauss", n_samples=4000, noise=0.5, seed=0)
    np.testing.assert_allclose(wide.X[wide.y == 1].var(0), [4.0, 4.0], rtol=0.1)


def test_generated_rows_are_shuffled():
    ds = load_dataset("spiral", n_samples=200, seed=0)
    assert 0 < ds.y[:100].sum() < 100  # not one class first and the other after


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(DataError) as err:
        load_dataset("foo")
    msg = str(err.value)
    assert "unknown dataset 'foo'" in msg and "\n" not in msg
    for name in DATASET_NAMES:
        assert name in msg


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(n_samples=1), "n_samples"),
        (dict(n_samples=2.5), "n_samples"),
        (dict(noise=-0.1), "noise"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_generation_arguments(kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        load_dataset("circle", **kwargs)


def test_name_is_forgiving_about_case_and_underscores():
    assert load_dataset("Circle", n_samples=10).name == "circle"


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_sets_match_listing(name):
    pytest.importorskip("sklearn")
    ds = load_dataset(name)
    row = next(r for r in list_datasets() if r["name"] == name)
    assert row["available"] is True
    assert ds.X.shape == (row["n_samples"], row["n_features"])
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert len(ds.target_names) == row["n_classes"] == len(np.unique(ds.y))
    assert len(ds.feature_names) == row["n_features"]
    assert all(isinstance(n, str) for n in ds.feature_names + ds.target_names)


def test_iris_names_and_subsample():
    pytest.importorskip("sklearn")
    ds = load_dataset("iris")
    assert ds.target_names == ["setosa", "versicolor", "virginica"]
    assert ds.feature_names[0] == "sepal length (cm)"
    sub = load_dataset("iris", n_samples=30, seed=5)
    again = load_dataset("iris", n_samples=30, seed=5)
    assert sub.X.shape == (30, 4)
    np.testing.assert_array_equal(sub.X, again.X)
    # every subsampled row is a real iris row with its own label
    full = {tuple(x): y for x, y in zip(ds.X.tolist(), ds.y.tolist(), strict=True)}
    assert all(full[tuple(x)] == y for x, y in zip(sub.X.tolist(), sub.y.tolist(), strict=True))
    with pytest.raises(DataError, match="more than the 150 rows"):
        load_dataset("iris", n_samples=151)
    assert load_dataset("breast_cancer").target_names == ["malignant", "benign"]


def test_sklearn_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes "import sklearn" fail
    with pytest.raises(DataError, match=r"pip install chainrule\[data\]"):
        load_dataset("wine")


def test_mnist1d_default_matches_listing_and_is_reproducible():
    pytest.importorskip("mnist1d")
    row = next(r for r in list_datasets() if r["name"] == "mnist1d")
    assert row["available"] is True
    np_state = np.random.get_state()[1].copy()
    py_state = random.getstate()
    ds = load_dataset("mnist1d")
    # loading must not disturb the global random generators it seeds internally
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state
    assert ds.X.shape == (row["n_samples"], row["n_features"])
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert sorted(np.unique(ds.y).tolist()) == list(range(10))
    assert ds.target_names == [str(k) for k in range(10)]
    small = load_dataset("mnist1d", n_samples=95, seed=1)
    again = load_dataset("mnist1d", n_samples=95, seed=1)
    other = load_dataset("mnist1d", n_samples=95, seed=2)
    assert small.X.shape == (95, 40)
    np.testing.assert_array_equal(small.X, again.X)
    assert not np.array_equal(small.X, other.X)


def test_mnist1d_unavailable_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(DataError, match="mnist1d"):
        load_dataset("mnist1d", n_samples=10)


# ---------------------------------------------------------------------------------------------
# train_test_split
# ---------------------------------------------------------------------------------------------


def test_split_sizes_and_partition():
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, seed=0)
    assert Xtr.shape == (15, 2) and Xte.shape == (5, 2)
    assert sorted(ytr.tolist() + yte.tolist()) == list(range(20))
    np.testing.assert_array_equal(Xtr[:, 0], ytr * 2)  # rows stay with their labels
    Xtr2, Xte2, *_ = train_test_split(X, y, test_size=7, seed=0)
    assert len(Xte2) == 7 and len(Xtr2) == 13
    a = train_test_split(X, y, seed=1)
    b = train_test_split(X, y, seed=1)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    _, _, _, yte_plain = train_test_split(X, y, test_size=4, shuffle=False)
    assert yte_plain.tolist() == [16, 17, 18, 19]


@pytest.mark.parametrize("test_size", [0, 1.0, 1.5, -3, 20, "a", True])
def test_split_rejects_bad_test_size(test_size):
    with pytest.raises(DataError, match="test_size"):
        train_test_split(np.zeros((20, 2)), np.zeros(20), test_size=test_size)


def test_split_length_mismatch():
    with pytest.raises(DataError, match="X has 5 rows but y has 4"):
        train_test_split(np.zeros((5, 2)), np.zeros(4))


def test_stratified_split_keeps_class_shares():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    X = np.arange(100, dtype=np.float32)[:, None]
    _, _, ytr, yte = train_test_split(X, y, test_size=0.2, seed=3, stratify=True)
    assert np.bincount(yte).tolist() == [12, 6, 2]
    assert np.bincount(ytr).tolist() == [48, 24, 8]
    # shares that do not divide evenly: 4 test rows from 7 + 5 -> 2.33 + 1.67 -> 2 + 2
    y2 = np.array([0] * 7 + [1] * 5)
    _, _, ytr2, yte2 = train_test_split(np.zeros((12, 1)), y2, test_size=4, stratify=True)
    assert np.bincount(yte2).tolist() == [2, 2] and np.bincount(ytr2).tolist() == [5, 3]
    with pytest.raises(DataError, match="at least 2 rows of every class"):
        train_test_split(X[:61], np.array([0] * 60 + [1]), stratify=True)


# ---------------------------------------------------------------------------------------------
# Standardizer
# ---------------------------------------------------------------------------------------------


def test_standardizer_matches_population_std_and_round_trips():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(50, 3)) * [1, 10, 0.1] + [5, -2, 0]).astype(np.float32)
    X[:, 2] = 7.0  # a constant column gets scale 1
    s = Standardizer().fit(X)
    np.testing.assert_allclose(s.mean_, X.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(s.scale_[:2], X[:, :2].astype(np.float64).std(0), rtol=1e-6)
    assert s.scale_[2] == 1.0
    Z = s.transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Z[:, :2].std(0), 1, atol=1e-5)
    np.testing.assert_array_equal(Z[:, 2], 0)
    np.testing.assert_allclose(s.inverse_transform(Z), X, rtol=1e-5, atol=1e-5)
    assert Standardizer().fit_transform(X.astype(np.float64)).dtype == np.float64


def test_standardizer_dict_json_round_trip():
    X = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    s = Standardizer().fit(X)
    d = json.loads(json.dumps(s.to_dict()))
    t = Standardizer.from_dict(d)
    np.testing.assert_array_equal(t.transform(X), s.transform(X))
    with pytest.raises(DataError, match="'mean' and 'scale'"):
        Standardizer.from_dict({"mean": [1.0]})
    with pytest.raises(DataError, match="same length"):
        Standardizer.from_dict({"mean": [1.0, 2.0], "scale": [1.0]})


def test_standardizer_errors():
    s = Standardizer()
    with pytest.raises(DataError, match="not fitted"):
        s.transform(np.zeros((2, 2)))
    s.fit(np.zeros((3, 4)))
    with pytest.raises(DataError) as err:
        s.transform(np.zeros((3, 3)))
    assert "3 features" in str(err.value) and "4 features" in str(err.value)


def test_standardize_fits_on_train_only():
    train = np.array([[0.0], [2.0]], dtype=np.float32)
    test = np.array([[4.0]], dtype=np.float32)
    scaler, tr, te = standardize(train, test)
    assert scaler.mean_.tolist() == [1.0] and scaler.scale_.tolist() == [1.0]
    assert tr.ravel().tolist() == [-1.0, 1.0] and te.ravel().tolist() == [3.0]


# ---------------------------------------------------------------------------------------------
# one_hot, batches, encode_labels
# ---------------------------------------------------------------------------------------------


def test_one_hot():
    out = one_hot(np.array([2, 0, 1]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.eye(3)[[2, 0, 1]])
    assert one_hot([1], num_classes=4).tolist() == [[0, 1, 0, 0]]
    with pytest.raises(DataError, match="label 3"):
        one_hot([0, 3], num_classes=3)
    with pytest.raises(DataError, match="label -1"):
        one_hot([0, -1])
    with pytest.raises(DataError, match="whole number"):
        one_hot([0.5])


def test_batches_cover_every_index_once_and_are_reproducible():
    X = np.arange(23)[:, None] * np.ones((1, 2))
    y = np.arange(23)
    seen = [yb for _, yb in batches(X, y, batch_size=5, seed=7)]
    assert [len(b) for b in seen] == [5, 5, 5, 5, 3]
    assert sorted(np.concatenate(seen).tolist()) == list(range(23))
    assert np.concatenate(seen).tolist() != list(range(23))  # shuffled
    again = [yb for _, yb in batches(X, y, batch_size=5, seed=7)]
    assert all(np.array_equal(a, b) for a, b in zip(seen, again, strict=True))
    for xb, yb in batches(X, y, batch_size=5, seed=7):
        np.testing.assert_array_equal(xb[:, 0], yb)  # X and y rows stay together
    # one generator across epochs: different orders, reproducible from its seed
    rng1, rng2 = np.random.default_rng(1), np.random.default_rng(1)
    e1 = np.concatenate(list(batches(X, batch_size=4, rng=rng1)))
    e2 = np.concatenate(list(batches(X, batch_size=4, rng=rng1)))
    assert not np.array_equal(e1, e2)
    np.testing.assert_array_equal(e1, np.concatenate(list(batches(X, batch_size=4, rng=rng2))))
    plain = list(batches(X, batch_size=10, shuffle=False, drop_last=True))
    assert [b[:, 0].tolist() for b in plain] == [list(range(10)), list(range(10, 20))]


@pytest.mark.parametrize("size", [0, -1, 2.0])
def test_batches_bad_size_fails_at_call(size):
    with pytest.raises(DataError, match="batch_size"):
        batches(np.zeros((4, 1)), batch_size=size)


def test_encode_labels():
    codes, names = encode_labels(["b", "a", "c", "a"])
    assert codes.dtype == np.int64 and codes.tolist() == [1, 0, 2, 0]
    assert names == ["a", "b", "c"]
    codes, names = encode_labels(np.array([2.0, 1.0, 10.0]))
    assert codes.tolist() == [1, 0, 2] and names == ["1", "2", "10"]
    codes, names = encode_labels(["10", "9", "9"])  # numbers sort as numbers, even as text
    assert names == ["9", "10"] and codes.tolist() == [1, 0, 0]
    assert encode_labels(np.array([0.5, 0.1], dtype=np.float32))[1] == ["0.1", "0.5"]


# ---------------------------------------------------------------------------------------------
# read_table / prepare
# ---------------------------------------------------------------------------------------------


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_csv_comma_with_text_labels(tmp_path):
    path = write(
        tmp_path,
        "flowers.csv",
        "length,width,species\n1.5,0.2,setosa\n4.7,1.4,versicolor\n 6.0 , 2.5 ,virginica\n",
    )
    table = read_table(path)
    assert isinstance(table, Table)
    assert table.columns == ["length", "width", "species"] and table.delimiter == ","
    X, y, names, rows = prepare(table, target="species")
    assert X.dtype == np.float32 and X.shape == (3, 2)
    np.testing.assert_allclose(X, [[1.5, 0.2], [4.7, 1.4], [6.0, 2.5]], rtol=1e-6)
    assert y.tolist() == ["setosa", "versicolor", "virginica"]
    assert names == ["length", "width"] and rows.tolist() == [1, 2, 3]
    assert infer_task(y) == "classification"


def test_csv_semicolon_with_decimal_comma_and_bom(tmp_path):
    path = write(tmp_path, "de.csv", "\ufeffa;b;ziel\n1,5;2;0\n3;4,25;1\n-0,5;1e3;1\n")
    table = read_table(path)
    assert table.delimiter == ";" and table.columns == ["a", "b", "ziel"]
    X, y, _, _ = prepare(table, target="ziel")
    np.testing.assert_allclose(X, [[1.5, 2], [3, 4.25], [-0.5, 1000]])
    assert y.dtype == np.float64 and y.tolist() == [0, 1, 1]


def test_tsv_and_explicit_delimiter(tmp_path):
    path = write(tmp_path, "data.tsv", "a\tb\n1\t2\n")
    assert read_table(path).columns == ["a", "b"]
    path = write(tmp_path, "data.txt", "a|b\n1|2\n")
    assert read_table(path).columns == ["a", "b"]
    assert read_table(path, delimiter="|").data["b"].tolist() == ["2"]
    with pytest.raises(DataError, match="single character"):
        read_table(path, delimiter="||")


def test_blank_lines_are_skipped_but_counted(tmp_path):
    path = write(tmp_path, "gaps.csv", "a,b\n1,2\n\n3,x\n")
    table = read_table(path)
    assert table.row_numbers.tolist() == [1, 3]
    with pytest.raises(DataError, match="row 3 of"):
        prepare(table)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="file not found: .*nope.csv"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)


def test_empty_and_header_only(tmp_path):
    with pytest.raises(DataError, match="empty.csv is empty"):
        read_table(write(tmp_path, "empty.csv", ""))
    with pytest.raises(DataError, match="blank.csv is empty"):
        read_table(write(tmp_path, "blank.csv", "\n  \n"))
    with pytest.raises(DataError, match="head.csv has a header but no data rows"):
        read_table(write(tmp_path, "head.csv", "a,b,c\n"))


def test_missing_target_column_lists_columns(tmp_path):
    table = read_table(write(tmp_path, "iris.csv", "a,b,c\n1,2,3\n"))
    with pytest.raises(DataError) as err:
        prepare(table, target="species")
    assert "column 'species' not found in" in str(err.value)
    assert "iris.csv; columns are: a, b, c" in str(err.value)
    with pytest.raises(DataError, match="did you mean 'a'"):
        prepare(table, target="A")
    with pytest.raises(DataError, match="column 'z' not found"):
        prepare(table, features=["a", "z"])


def test_text_in_numeric_column(tmp_path):
    rows = "".join(f"{i},{i * 2}\n" for i in range(6)) + "abc,1\n"
    table = read_table(write(tmp_path, "data.csv", "age,y\n" + rows))
    with pytest.raises(DataError) as err:
        prepare(table, target="y")
    msg = str(err.value)
    assert "column 'age', row 7 of" in msg and "data.csv: 'abc' is not a number" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("marker", ["", "NA", "NaN", "null", "?", "n/a"])
def test_missing_values_are_errors(tmp_path, marker):
    table = read_table(write(tmp_path, "m.csv", f"a,b,y\n1,2,0\n3,{marker},1\n5,6,1\n"))
    with pytest.raises(DataError) as err:
        prepare(table, target="y")
    msg = str(err.value)
    assert "column 'b', row 2 of" in msg and "m.csv" in msg
    assert ("empty cell" if marker == "" else repr(marker)) in msg


def test_drop_missing_returns_kept_rows(tmp_path):
    table = read_table(write(tmp_path, "m.csv", "a,b,y\n1,2,0\n3,NA,1\n5,6,\n7,8,1\n"))
    with pytest.raises(DataError, match="column 'y', row 3"):
        prepare(table, target="y", features=["a"])  # target missing is an error too
    X, y, names, rows = prepare(table, target="y", drop_missing=True)
    assert rows.tolist() == [1, 4]
    assert X.tolist() == [[1, 2], [7, 8]] and y.tolist() == [0, 1]
    every = read_table(write(tmp_path, "all.csv", "a,y\n,1\nNA,2\n"))
    with pytest.raises(DataError, match="no rows are left"):
        prepare(every, target="y", drop_missing=True)


def test_ragged_rows(tmp_path):
    path = write(tmp_path, "data.csv", "a,b,c,d\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3\n")
    with pytest.raises(DataError, match="row 5 of .*data.csv has 3 fields, the header has 4"):
        read_table(path)
    # a trailing delimiter (as some spreadsheets write) is not an extra field
    ok = read_table(write(tmp_path, "trail.csv", "a,b,\n1,2,\n"))
    assert ok.columns == ["a", "b"] and ok.data["b"].tolist() == ["2"]


def test_duplicate_and_unnamed_columns(tmp_path):
    with pytest.raises(DataError, match=r"column name 'a' appears twice .*\(columns 1 and 3\)"):
        read_table(write(tmp_path, "dup.csv", "a,b,a\n1,2,3\n"))
    with pytest.raises(DataError, match="column 1 of .* has no name"):
        read_table(write(tmp_path, "noname.csv", ",b\n1,2\n"))


def test_prepare_feature_selection_and_ids(tmp_path):
    table = read_table(write(tmp_path, "p.csv", "id,name,x,z,y\n7,ann,1,2,3\n8,bob,4,5,6\n"))
    X, y, names, _ = prepare(table, target="y", id_columns=["id", "name"])
    assert names == ["x", "z"] and X.tolist() == [[1, 2], [4, 5]]
    X, y, names, _ = prepare(table, features=["z", "x"])
    assert names == ["z", "x"] and y is None and X.tolist() == [[2, 1], [5, 4]]
    with pytest.raises(DataError, match="both the target and a feature"):
        prepare(table, target="y", features=["x", "y"])
    with pytest.raises(DataError, match="'inf' is not a finite number"):
        prepare(read_table(write(tmp_path, "inf.csv", "a\ninf\n")))


def test_non_utf8_text_is_read(tmp_path):
    path = write(tmp_path, "latin.csv", "größe,y\n1,ja\n2,nein\n", encoding="cp1252")
    assert read_table(path).columns == ["größe", "y"]
    path = write(tmp_path, "u16.csv", "a,b\n1,2\n", encoding="utf-16")  # adds a BOM
    assert read_table(path).columns == ["a", "b"]


def test_spreadsheet_extension_explains(tmp_path):
    with pytest.raises(DataError, match="save it as CSV"):
        read_table(write(tmp_path, "book.xlsx", "PK"))


def test_npz(tmp_path):
    path = str(tmp_path / "d.npz")
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.savez(path, X=X, y=np.array(["a", "b", "a", "b"]))
    table = read_table(path)
    assert table.columns == ["x1", "x2", "x3", "y"]
    X2, y, names, rows = prepare(table, target="y")
    np.testing.assert_array_equal(X2, X)
    assert y.tolist() == ["a", "b", "a", "b"] and rows.tolist() == [1, 2, 3, 4]
    named = str(tmp_path / "n.npz")
    np.savez(named, X=X, feature_names=np.array(["p", "q", "r"]))
    assert read_table(named).columns == ["p", "q", "r"]
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, data=X)
    with pytest.raises(DataError, match="no array named 'X'"):
        read_table(bad)
    short = str(tmp_path / "short.npz")
    np.savez(short, X=X, y=np.zeros(3))
    with pytest.raises(DataError, match="'y' .* has shape \\(3,\\) but 'X' has 4 rows"):
        read_table(short)
    nan = str(tmp_path / "nan.npz")
    X[2, 1] = np.nan
    np.savez(nan, X=X)
    with pytest.raises(DataError, match="column 'x2', row 3"):
        prepare(read_table(nan))


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / "d.parquet")
    pq.write_table(
        pa.table({"a": [1.0, 2.0, None], "b": [1, 2, 3], "label": ["x", "y", "x"]}), path
    )
    table = read_table(path)
    assert table.columns == ["a", "b", "label"]
    with pytest.raises(DataError, match="column 'a', row 3"):
        prepare(table, target="label")
    X, y, names, rows = prepare(table, target="label", drop_missing=True)
    assert X.tolist() == [[1, 1], [2, 2]] and y.tolist() == ["x", "y"] and rows.tolist() == [1, 2]


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    path = write(tmp_path, "d.parquet", "not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match="pip install pyarrow"):
        read_table(path)


# ---------------------------------------------------------------------------------------------
# infer_task, write_table
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, task",
    [
        (np.array(["cat", "dog"], dtype=object), "classification"),
        (np.array([0.0, 1.0, 1.0]), "classification"),
        (np.arange(20.0), "classification"),
        (np.arange(21.0), "regression"),
        (np.array([1.5, 2.0, 3.0]), "regression"),
        (np.array([True, False]), "classification"),
        (np.array(["1", "2", "x"], dtype=object), "classification"),
        (np.array(["1.5", "2"], dtype=object), "regression"),
    ],
)
def test_infer_task(values, task):
    assert infer_task(values) == task


def test_write_table_round_trip_and_atomic(tmp_path):
    path = tmp_path / "pred.csv"
    path.write_text("old contents that are longer than the new file\n" * 10)
    out = write_table(
        path,
        {
            "row": np.array([1, 2]),
            "label": ["a,b", "c"],
            "p": np.array([0.1, 0.25], dtype=np.float32),
        },
    )
    assert out == str(path)
    assert path.read_text() == 'row,label,p\n1,"a,b",0.1\n2,c,0.25\n'
    assert sorted(os.listdir(tmp_path)) == ["pred.csv"]  # no temporary file left behind
    table = read_table(path)
    assert table.data["label"].tolist() == ["a,b", "c"]


def test_write_table_failure_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.csv"
    path.write_text("a\n1\n")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(DataError, match="cannot write .*keep.csv: no space left"):
        write_table(path, {"a": [2]})
    assert path.read_text() == "a\n1\n"
    assert sorted(os.listdir(tmp_path)) == ["keep.csv"]


def test_write_table_errors(tmp_path):
    with pytest.raises(DataError, match="has 1 values but column 'a' has 2"):
        write_table(tmp_path / "x.csv", {"a": [1, 2], "b": [1]})
    with pytest.raises(DataError, match="does not exist"):
        write_table(tmp_path / "no" / "x.csv", {"a": [1]})
