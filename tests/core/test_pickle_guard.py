"""core.pickle_guard: ordinary pickles pass with their true depth; every bound refuses before anything is
built; persistent-id literals and legacy torch storage claims are read correctly."""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.legacy_pickle import check_storage_blob
from core.pickle_guard import GlobalRef, PickleGuardError, PickleLimits, scan_pickle

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
                   st.binary(max_size=8))
TREES = st.recursive(LEAVES, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.tuples(kids, kids), st.dictionaries(st.text(max_size=4), kids, max_size=4),
    st.frozensets(st.integers(), max_size=3)), max_leaves=30)


def depth(x) -> int:
    if isinstance(x, (list, tuple, dict, frozenset)):
        items = list(x.items()) if isinstance(x, dict) else list(x)
        flat = [v for kv in items for v in (kv if isinstance(x, dict) else (kv,))]
        return 1 + max((depth(v) for v in flat), default=0)
    return 0


@settings(max_examples=150, deadline=None)
@given(TREES, st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_ordinary_pickles_pass_and_the_depth_is_never_underestimated(tree, protocol):
    data = pickle.dumps(tree, protocol=protocol)
    scan = scan_pickle(data)
    assert scan.end == len(data)
    assert scan.depth >= depth(tree)  # conservative: a tree of depth d is never reported shallower


def test_the_scan_stops_at_stop_and_a_file_is_left_after_it():
    first, second = pickle.dumps([1, (2, 3)], 4), pickle.dumps({"a": 1}, 2)
    assert scan_pickle(first + second).end == len(first)
    assert scan_pickle(first + second, len(first)).end == len(first) + len(second)
    f = io.BytesIO(first + second)  # a file object without fileno: the bounded-read path
    assert scan_pickle(f).end == len(first) and f.tell() == len(first)


def test_the_file_path_and_the_bytes_path_agree(tmp_path):
    data = pickle.dumps({"t": torch.arange(6.0), "d": OrderedDict(a=[1, 2])}, 4)
    (tmp_path / "x.pkl").write_bytes(data)
    with open(tmp_path / "x.pkl", "rb") as f:  # memory-mapped
        a = scan_pickle(f)
        assert f.tell() == len(data)
    b = scan_pickle(data)
    assert (a.ops, a.depth, a.items, a.globals) == (b.ops, b.depth, b.items, b.globals)
    assert GlobalRef("collections", "OrderedDict") in a.globals


@pytest.mark.parametrize("data, limits, message, is_limit", [
    (b"\x80\x04}" + b")" + b"\x85" * 10**5 + b"K\x01s.", PickleLimits(), "nested deeper than 200", True),
    (b"\x80\x04" + b"]" * 300 + b"a" * 299 + b".", PickleLimits(), "nested deeper", True),
    (b"\x80\x04](" + b"N" * 50 + b"e.", PickleLimits(max_container_items=40), "container of more than 40", True),
    (b"\x80\x04" + b"]]a" * 30 + b"." , PickleLimits(max_total_items=20), "20 container items", True),
    (b"\x80\x04" + b"N" * 100 + b".", PickleLimits(max_stack=50), "50 values on the unpickler's stack", True),
    (b"\x80\x04" + b"(" * 100 + b"N.", PickleLimits(max_stack=50), "stack", True),
    (b"\x80\x04" + b"N0" * 100 + b"N.", PickleLimits(max_ops=150), "150 opcodes", True),
    (b"\x80\x04K\x01r" + (1 << 28).to_bytes(4, "little") + b".", PickleLimits(), "memo index", False),
    (b"\x80\x04\x95" + (1 << 40).to_bytes(8, "little") + b"K\x01.", PickleLimits(), "frame claims", False),
    (b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"abc.", PickleLimits(), "bytes8", False),
    (b"cos\nsystem" + b"x" * 100 + b"\n.", PickleLimits(max_line=64), "text line", True),
    (b"\x80\x04a.", PickleLimits(), "underflow", False),
    (b"\x80\x04h\x05.", PickleLimits(), "read before it was written", False),
    (b"\x80\x04K\x01", PickleLimits(), "STOP", False),
    (b"\x80\x04K\x01K\x02.", PickleLimits(), "left on the stack", False),
])
def test_each_bound_refuses(data, limits, message, is_limit):
    with pytest.raises(PickleGuardError, match=message) as info:
        scan_pickle(data, limits=limits)
    assert info.value.limit is is_limit


def test_cycles_through_mutable_containers_are_not_nesting_but_cannot_hide_depth():
    """A list holding itself, and A -> B -> A (the shape of a module whose state holds a bound method of
    itself, as GGHead checkpoints have), are linked by the unpickler through the memo without recursion:
    accepted. Nesting added to such a cycle afterwards is still counted."""
    self_loop = b"\x80\x04]r\x00\x00\x00\x00j\x00\x00\x00\x00a."
    obj = pickle.loads(self_loop)
    assert obj[0] is obj
    scan_pickle(self_loop)
    two_cycle = b"\x80\x04]r\x00\x00\x00\x00]j\x00\x00\x00\x00aa"
    obj = pickle.loads(two_cycle + b".")
    assert obj[0][0] is obj
    scan_pickle(two_cycle + b".")
    deep_on_cycle = two_cycle + b"]" * 300 + b"a" * 299 + b"a."
    obj = pickle.loads(deep_on_cycle)
    assert depth_of_chain(obj[1]) == 300
    with pytest.raises(PickleGuardError, match="nested deeper"):
        scan_pickle(deep_on_cycle)


def test_nesting_added_after_containment_is_propagated():
    """Lists memoized first and nested top-down (each filled after it was put in its parent)."""
    n = 250
    data = (b"\x80\x04" + b"".join(b"]r" + i.to_bytes(4, "little") + b"0" for i in range(n))
            + b"".join(b"j" + i.to_bytes(4, "little") + b"j" + (i + 1).to_bytes(4, "little") + b"a0"
                       for i in range(n - 1)) + b"j" + (0).to_bytes(4, "little") + b".")
    obj = pickle.loads(data)
    assert depth_of_chain(obj) == n  # the stream really nests n deep
    with pytest.raises(PickleGuardError, match="nested deeper"):
        scan_pickle(data)
    assert scan_pickle(data, limits=PickleLimits(max_depth=n)).depth == n


def depth_of_chain(x) -> int:
    d = 0
    while isinstance(x, list):
        d, x = d + 1, x[0] if x else None
    return d


def test_persistent_ids_and_results_are_read_as_literals():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", "key", 7, None) if obj == "x" else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(["x", 1])
    assert scan_pickle(buf.getvalue()).persistent_ids == (("storage", "key", 7, None),)
    assert scan_pickle(pickle.dumps(0x1950A86A20F9469CFC6C, 2)).result == 0x1950A86A20F9469CFC6C
    assert scan_pickle(pickle.dumps([1], 2)).result is None  # containers are not literals


def _blob(values: int = 4) -> bytes:
    ts = torch.storage.TypedStorage(wrap_storage=torch.arange(float(values)).untyped_storage(),
                                    dtype=torch.float32, _internal=True)
    return ts.__reduce__()[1][0]


def test_storage_blob_claims_are_checked_against_the_bytes():
    blob = _blob()
    assert check_storage_blob(blob) == 8 + 4 * 4
    liar = blob.replace(b"K\x04N", b"J" + (10**9).to_bytes(4, "little") + b"N", 1)
    with pytest.raises(pickle.UnpicklingError, match="claim 4,000,000,008 bytes"):
        check_storage_blob(liar)
    with pytest.raises(pickle.UnpicklingError, match="zip format"):
        buf = io.BytesIO()
        torch.save(torch.zeros(2), buf)
        check_storage_blob(buf.getvalue())
