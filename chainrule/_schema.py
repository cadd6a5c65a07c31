"""The model file's schema: everything in a file is checked before anything is allocated or built.

A model file is a safetensors file: 8 bytes giving the header's length, a JSON header naming
each tensor (dtype, shape, byte range) and holding chainrule's metadata (strings of JSON), then
the bytes. :func:`check_file` reads the header itself (never more than ``MAX_HEADER`` bytes),
checks every tensor entry against the file's size, parses each metadata section with a bound on
nesting, and :func:`check_info` checks the sections' types and sizes: the architecture's layers
(known layer names only, their settings' types and ranges), the parameters the architecture
implies against the tensors the file holds, the label names against the outputs, the
standardizers against the features. Every failure is a :class:`ModelFileError` naming the
section, the field, the value and what was expected.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import stat

from .errors import ModelFileError

__all__ = ["check_file", "check_info", "MAX_HEADER", "MAX_DEPTH"]

MAX_HEADER = 16 << 20  # bytes of JSON header (safetensors itself allows 100 MB)
MAX_DEPTH = 64  # nesting of JSON values and of containers in the architecture
MAX_LAYERS = 100_000
MAX_NAMES = 10_000_000  # feature / label names
_DTYPES = {
    "F16": 2,
    "BF16": 2,
    "F32": 4,
    "F64": 8,
    "I8": 1,
    "I16": 2,
    "I32": 4,
    "I64": 8,
    "U8": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
_LOSSES_OUTPUTS = ("logits", "logit", "probability", "value", "score", "scores")


def _fail(path, text):
    raise ModelFileError(f"{path}: {text}")


def _depth(value, limit=MAX_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > deepest:
            deepest = d
            if d > limit:
                return d
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def _bracket_depth(text: str) -> int:
    """The deepest [ / { nesting of a JSON text, counted before parsing it (json.loads recurses
    and would overflow the stack on 100,000 nested brackets)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in "]}":
            depth -= 1
    return deepest


def _parse(path, what, text):
    if not isinstance(text, str):
        _fail(path, f"the {what} metadata is a {type(text).__name__}; expected a JSON string")
    # a quick pre-check: the bracket count can be fooled by brackets in strings only upward
    if text.count("[") + text.count("{") > MAX_DEPTH and _bracket_depth(text) > MAX_DEPTH:
        _fail(path, f"the {what} metadata is nested more than {MAX_DEPTH} levels deep")
    try:
        value = json.loads(text, parse_constant=lambda c: float(c))
    except (json.JSONDecodeError, RecursionError, ValueError):
        _fail(path, f"the {what} metadata is not valid JSON")
    return value


def check_file(path) -> tuple[dict, dict]:
    """Read and check the header of the safetensors file at ``path`` (a regular file only).

    Returns ``(tensors, metadata)``: ``tensors`` maps each name to (dtype, shape, (begin, end)),
    ``metadata`` the raw ``__metadata__`` strings. Nothing but the header is read."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"{path} is a folder, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(
            f"{path} is not a regular file (a pipe, device or socket); expected "
            "a .safetensors model file"
        )
    size = st.st_size
    if size == 0:
        raise ModelFileError(f"{path} is empty, not a chainrule model file")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            looks = len(head) > 8 and head[8:9] == b"{"
            if not looks and (head[:1] == b"\x80" or head[:2] == b"PK"):
                raise ModelFileError(
                    f"{path} looks like a pickle (or a zip of one, as torch.save writes): "
                    "chainrule never loads pickles; it reads .safetensors files it wrote"
                )
            if len(head) < 8:
                raise ModelFileError(
                    f"{path} is truncated or not a safetensors file (it has {size} bytes)"
                )
            n = int.from_bytes(head[:8], "little")
            if n > size - 8:
                raise ModelFileError(
                    f"{path} is truncated or not a safetensors file "
                    f"(header says {n} bytes, the file has {size})"
                )
            if n > MAX_HEADER:
                raise ModelFileError(
                    f"{path}: the header has {n} bytes, more than the "
                    f"{MAX_HEADER} a chainrule model file may have"
                )
            f.seek(8)
            raw = f.read(n)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail(path, "the header is not UTF-8 text; the file is damaged or not a safetensors file")
    if _bracket_depth(text) > MAX_DEPTH:
        _fail(path, f"the header is nested more than {MAX_DEPTH} levels deep")
    try:
        header = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        _fail(path, "the header is not valid JSON; the file is damaged or not a safetensors file")
    if not isinstance(header, dict):
        _fail(path, f"the header is a JSON {type(header).__name__}; expected an object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        _fail(path, "the header's __metadata__ is not a table of strings")
    data_bytes = size - 8 - n
    tensors, spans = {}, []
    for name, entry in header.items():
        where = f"tensor '{name[:80]}'"
        if not isinstance(entry, dict):
            _fail(path, f"{where} is described by a {type(entry).__name__}; expected an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPES:
            _fail(
                path, f"{where} has dtype {str(dtype)[:20]!r}; expected one of {', '.join(_DTYPES)}"
            )
        if (
            not isinstance(shape, list)
            or len(shape) > 8
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            _fail(
                path,
                f"{where} has shape {str(shape)[:60]}; expected a list of at most 8 "
                "whole numbers >= 0",
            )
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_bytes
        ):
            _fail(
                path,
                f"{where} has byte range {str(offsets)[:60]}; expected [begin, end] "
                f"within the {data_bytes} data bytes of the file",
            )
        need = math.prod(shape) * _DTYPES[dtype]
        if need != offsets[1] - offsets[0]:
            _fail(
                path,
                f"{where} of shape {tuple(shape)} ({dtype}) needs {need} bytes but the "
                f"file gives it {offsets[1] - offsets[0]}",
            )
        tensors[name] = (dtype, tuple(shape), tuple(offsets))
        spans.append(tuple(offsets))
    spans.sort()
    for (_, e0), (b1, _) in itertools.pairwise(spans):
        if b1 < e0:
            _fail(path, "two tensors share bytes; the file is damaged")
    return tensors, meta


# --- the architecture ---------------------------------------------------------------------------


def _int(v, lo, hi=None):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)


def _num(v, lo=-math.inf, hi=math.inf):
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and lo <= v <= hi
    )


# checks a layer class names in its ``settings`` fact (chainrule.registry): (check, expected)
SIZE = (lambda v: _int(v, 1, 1 << 40), "a whole number >= 1")
BOOL = (lambda v: isinstance(v, bool), "true or false")
DIM = (lambda v: _int(v, -64, 64), "a whole number between -64 and 64")
NUMBER = (_num, "a finite number")
FRACTION = (lambda v: _num(v, 0, 1), "a number from 0 to 1")
POSITIVE = (lambda v: _num(v, 0), "a number > 0")
MOMENTUM = (lambda v: v is None or _num(v, 0, 1), "a number from 0 to 1")


def _param_count(kind, config, rules, counts) -> int | None:
    """Number of values the layer's state holds: the layer's own ``values`` fact when it states
    one (chainrule.registry), 0 for a layer with declared settings but no state, else None."""
    count = counts.get(kind)
    if count is not None:
        return count(config)
    if rules is not None:
        return 0
    return None


def _layer_bound(config) -> int:
    """A generous bound on what an unfamiliar layer allocates: the product of its sizes."""
    total = 1
    for v in config.values():
        for x in v if isinstance(v, list) else [v]:
            if _int(x, 2):
                total *= x
    return total


def check_architecture(
    path, spec, known: dict, containers: tuple, file_values: int, counts: dict | None = None
) -> int:
    """Check the architecture description; return the number of values its state will hold.
    ``known`` maps the layer names the loader can build to their settings' checks
    (``{setting: (check, expected)}``, None when unchecked), ``file_values`` the values the file
    holds (the architecture may not imply more), ``counts`` the layers' ``values`` facts (how
    many values a layer of that config holds)."""
    total, count = 0, 0
    stack = [(spec, "architecture", 1)]
    while stack:
        node, where, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            _fail(path, f"the architecture is nested more than {MAX_DEPTH} levels deep")
        if count > MAX_LAYERS:
            _fail(path, f"the architecture has more than {MAX_LAYERS} layers")
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            _fail(
                path,
                f"{where} is {str(node)[:60]!r}; expected a layer description "
                '{"type": ..., "config": {...}}',
            )
        kind = node["type"]
        if kind in containers:
            children = node.get("children", [])
            if not isinstance(children, list):
                _fail(
                    path, f"{where} ({kind}) has children {str(children)[:40]!r}; expected a list"
                )
            stack.extend((c, f"{where}.{i}", depth + 1) for i, c in enumerate(children))
            continue
        if kind not in known:
            _fail(
                path,
                f"unknown layer type {kind[:40]!r} at {where}; a model file may name "
                f"chainrule's layers only ({', '.join(sorted(known))})",
            )
        config = node.get("config", {})
        if not isinstance(config, dict):
            _fail(path, f"{where} ({kind}) has config {str(config)[:40]!r}; expected an object")
        rules = known[kind]
        for key, value in config.items():
            if rules is not None:
                if key not in rules:
                    _fail(
                        path,
                        f"layer {kind} at {where} has unknown setting {key[:40]!r}; "
                        f"expected {', '.join(rules) or 'none'}",
                    )
                check, expected = rules[key]
                if not check(value):
                    _fail(
                        path,
                        f"layer {kind} at {where}: {key} is {str(value)[:40]!r}; "
                        f"expected {expected}",
                    )
            elif not (
                value is None
                or isinstance(value, (bool, str))
                or _num(value)
                or (isinstance(value, list) and len(value) <= 8 and all(_num(x) for x in value))
            ):
                _fail(
                    path,
                    f"layer {kind} at {where}: {key} is {str(value)[:40]!r}; expected "
                    "a number, text, true/false or a short list of numbers",
                )
        n = _param_count(kind, config, rules, counts or {})
        total += n if n is not None else 0
        bound = n if n is not None else _layer_bound(config)
        if bound > 4 * file_values + (1 << 16):
            _fail(
                path,
                f"layer {kind} at {where} would hold about {bound:,} values but the "
                f"file has {file_values:,}: the architecture does not fit the weights",
            )
    # a bound, not an equality: the exact match of every tensor is load_state_dict's check,
    # which runs after building (then bounded by this); this one stops allocation bombs
    if total > 2 * file_values + (1 << 16):
        _fail(
            path,
            f"the architecture needs about {total:,} values but the file holds "
            f"{file_values:,}: the weights are missing or the architecture is wrong",
        )
    return total


# --- the other sections -------------------------------------------------------------------------


def _strings(path, where, v, limit=MAX_NAMES):
    if not isinstance(v, list) or len(v) > limit or not all(isinstance(s, str) for s in v):
        _fail(path, f"{where} is {str(v)[:60]!r}; expected a list of names")


def _numbers(path, where, v, n=None):
    if not isinstance(v, list) or not all(_num(x) for x in v):
        _fail(path, f"{where} is {str(v)[:60]!r}; expected a list of finite numbers")
    if n is not None and len(v) != n:
        _fail(path, f"{where} has {len(v)} numbers; expected {n} (one per feature)")


def check_info(path, info: dict, n_outputs: int | None, loss_names) -> None:
    """Check the preprocessing, training and metrics sections (types, sizes, agreement with the
    model's ``n_outputs``). ``loss_names`` are the loss names a file may use."""
    for key in ("preprocessing", "training", "metrics"):
        v = info.get(key)
        if v is not None and not isinstance(v, dict):
            _fail(path, f"the {key} metadata is a JSON {type(v).__name__}; expected an object")
    pre = info.get("preprocessing")
    if pre:
        names = pre.get("feature_names")
        if names is not None:
            _strings(path, "preprocessing.feature_names", names)
        for key in ("standardizer", "target_standardizer"):
            s = pre.get(key)
            if s is None:
                continue
            if not isinstance(s, dict):
                _fail(
                    path,
                    f"preprocessing.{key} is {str(s)[:40]!r}; expected "
                    '{"mean": [...], "scale": [...]}',
                )
            n = len(names) if key == "standardizer" and isinstance(names, list) else None
            _numbers(path, f"preprocessing.{key}.mean", s.get("mean"), n)
            _numbers(path, f"preprocessing.{key}.scale", s.get("scale"), len(s["mean"]))
            if any(x <= 0 for x in s["scale"]):
                _fail(
                    path, f"preprocessing.{key}.scale holds a value <= 0; expected positive scales"
                )
        task = pre.get("task")
        if task is not None and task not in ("classification", "regression"):
            _fail(
                path,
                f"preprocessing.task is {str(task)[:40]!r}; expected 'classification' "
                "or 'regression'",
            )
        loss = pre.get("loss")
        if loss is not None and loss not in loss_names:
            _fail(
                path,
                f"preprocessing.loss is {str(loss)[:40]!r}; expected one of "
                f"{', '.join(loss_names)}",
            )
        out = pre.get("output")
        if out is not None and not isinstance(out, str):
            _fail(path, f"preprocessing.output is {str(out)[:40]!r}; expected a name")
        for key in ("id_columns",):
            if pre.get(key) is not None:
                _strings(path, f"preprocessing.{key}", pre[key])
        if pre.get("target") is not None and not isinstance(pre["target"], str):
            _fail(path, f"preprocessing.target is {str(pre['target'])[:40]!r}; expected a name")
        labels = pre.get("label_names")
        if labels is not None:
            _strings(path, "preprocessing.label_names", labels)
            if n_outputs is not None:
                expected = n_outputs if n_outputs > 1 else 2
                if len(labels) != expected:
                    _fail(
                        path,
                        f"preprocessing.label_names has {len(labels)} labels but the "
                        f"model has {n_outputs} output{'s' * (n_outputs != 1)}; "
                        f"expected {expected} labels",
                    )
    metrics = info.get("metrics")
    if metrics:

        def number(v):
            return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))

        for part, values in metrics.items():
            if not (
                number(values)
                or isinstance(values, dict)
                and all(number(v) for v in values.values())
            ):
                _fail(
                    path,
                    f"metrics.{part[:40]} is {str(values)[:60]!r}; expected a number "
                    "or names and numbers",
                )
    for key in ("training", "extra"):
        v = info.get(key)
        if v is not None and _depth(v) > MAX_DEPTH:
            _fail(path, f"the {key} metadata is nested more than {MAX_DEPTH} levels deep")
