"""A model of the unpickler's stack for :mod:`core.pickle_guard`: every value is a node with a nesting depth
(atoms are node 0), so a pickle's nesting, container sizes and memo can be bounded from its opcodes alone,
without building anything. Also the guard's error type, its limits and :class:`GlobalRef`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_LITERAL_TEXT", "NOT_A_LITERAL", "PLAIN_ATOMS", "GlobalRef", "PickleGuardError",
           "PickleLimits", "StackModel", "apply_opcode", "malformed"]


class PickleGuardError(ValueError):
    """The stream exceeds a limit, claims bytes it does not hold, or is malformed (the message says which).
    Nothing from it was built. ``limit`` is True for a limit (``PickleLimits``) and False for a malformed or
    truncated stream (which the real unpickler would refuse too, at the same opcode or earlier)."""

    def __init__(self, message: str, *, limit: bool = True) -> None:
        super().__init__(message)
        self.limit = limit


def malformed(message: str) -> PickleGuardError:
    return PickleGuardError(message, limit=False)


@dataclass(frozen=True)
class PickleLimits:
    """Bounds for :func:`scan_pickle` (defaults suit model checkpoints: a few thousand tensors, nesting of a
    few dozen levels; the memory they allow is a few hundred bytes per opcode at most).

    Attributes:
        max_depth: nesting of any object (Python's own C code recurses once per level).
        max_container_items: items (dict keys and values count separately) added to one container.
        max_total_items: items added to all containers together.
        max_stack: values on the unpickler's stack at any time (marks included).
        max_memo: memo entries; a memo index may never exceed the number of opcodes read so far.
        max_ops: opcodes in the stream (bounds the scan's time: about 1.5 s per million).
        max_line: bytes in one protocol-0 text argument (a global's name, a decimal number, ...).
    """

    max_depth: int = 200
    max_container_items: int = 1_000_000
    max_total_items: int = 2_000_000
    max_stack: int = 100_000  # pickle.dump batches APPENDS / SETITEMS by 1000: stacks stay small
    max_memo: int = 2_000_000
    max_ops: int = 2_000_000  # an official 512 snapshot has ~100 k
    max_line: int = 1 << 20


@dataclass(frozen=True)
class GlobalRef:
    """A global named by the stream (GLOBAL / STACK_GLOBAL / INST), as data."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


class _NoLiteral:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<not a literal>"


NOT_A_LITERAL = _NoLiteral()
_MAX_LITERAL_TUPLE = 16
MAX_LITERAL_TEXT = 1024
_ATOMS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "SHORT_BINUNICODE",
    "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE",
}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
PLAIN_ATOMS = _ATOMS - set(_CONSTANTS)  # their argument is their value


def _literal(value: Any) -> Any:
    if isinstance(value, (str, bytes)) and len(value) > MAX_LITERAL_TEXT:
        return NOT_A_LITERAL
    return value


class StackModel:
    """The stack model: every value is a node id (0: an atom, which never contains anything) with a
    literal value alongside; containers record their depth, size and the containers that hold them."""

    def __init__(self, limits: PickleLimits) -> None:
        self.lim = limits
        self.depth = [0]
        self.size = [0]
        self.parents: list[list[int]] = [[]]
        self.stack: list[int] = []
        self.lits: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, tuple[int, Any]] = {}
        self.items = 0
        self.deepest = 0
        self.work = 0  # depth updates propagated to containers that already held a deepened object

    # -------------------------------------------------------------- nodes

    def _too_deep(self) -> PickleGuardError:
        return PickleGuardError(f"objects nested deeper than {self.lim.max_depth} levels; refused before "
                                "building them")

    def _count(self, node: int, k: int) -> None:
        self.items += k
        if self.items > self.lim.max_total_items:
            raise PickleGuardError(f"more than {self.lim.max_total_items:,} container items in all")
        if node:
            self.size[node] += k
            if self.size[node] > self.lim.max_container_items:
                raise PickleGuardError(f"a container of more than {self.lim.max_container_items:,} items")

    def new(self, children: list[int]) -> int:
        d = 1 + max((self.depth[c] for c in children), default=0)
        if d > self.lim.max_depth:
            raise self._too_deep()
        node = len(self.depth)
        self.depth.append(d)
        self.size.append(0)
        self.parents.append([])
        self._count(node, len(children))
        for c in set(children):
            if c:
                self.parents[c].append(node)
        self.deepest = max(self.deepest, d)
        return node

    def _ancestors(self, node: int) -> set[int]:
        """``node`` and every container that holds it, directly or not (charged to the work bound)."""
        seen, todo = {node}, [node]
        while todo:
            for p in self.parents[todo.pop()]:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        self.work += len(seen)
        if self.work > self.lim.max_total_items:
            raise PickleGuardError(f"containers were deepened after being nested more than "
                                   f"{self.lim.max_total_items:,} times")
        return seen

    def add(self, target: int, children: list[int]) -> None:
        if not target:  # an atom: the real unpickler fails on it
            return
        self._count(target, len(children))
        need = self.depth[target]
        # A child that already holds ``target`` closes a cycle through mutable containers (e.g. a module whose
        # state holds a bound method of itself, as GGHead checkpoints have): the unpickler links it through
        # the memo without recursing, so it adds no nesting. Deep *immutable* nesting (tuples, the case that
        # crashes the interpreter) is built bottom-up by ``new`` and is bounded there.
        holders = self._ancestors(target) if any(c and self.parents[target] for c in children) else {target}
        for c in set(children):
            if c and c not in holders:
                self.parents[c].append(target)
                need = max(need, self.depth[c] + 1)
        work = [(target, need)]
        while work:
            node, d = work.pop()
            if self.depth[node] >= d:
                continue
            if d > self.lim.max_depth:
                raise self._too_deep()
            self.depth[node] = d
            self.deepest = max(self.deepest, d)
            raised = [(p, d + 1) for p in self.parents[node] if self.depth[p] < d + 1]
            self.work += len(raised)
            if self.work > self.lim.max_total_items:  # pickle.dump never fills a container after nesting it
                raise PickleGuardError(f"containers were deepened after being nested more than "
                                       f"{self.lim.max_total_items:,} times")
            work.extend(raised)

    # -------------------------------------------------------------- stack

    def push(self, node: int, lit: Any = NOT_A_LITERAL) -> None:
        if len(self.stack) + len(self.marks) >= self.lim.max_stack:
            raise PickleGuardError(f"more than {self.lim.max_stack:,} values on the unpickler's stack")
        self.stack.append(node)
        self.lits.append(lit)

    def pop(self) -> tuple[int, Any]:
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise malformed("malformed pickle: stack underflow")
        return self.stack.pop(), self.lits.pop()

    def pop_mark(self) -> tuple[list[int], list[Any]]:
        if not self.marks:
            raise malformed("malformed pickle: no MARK to pop to")
        k = self.marks.pop()
        nodes, lits = self.stack[k:], self.lits[k:]
        del self.stack[k:], self.lits[k:]
        return nodes, lits

    def top(self) -> int:
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise malformed("malformed pickle: stack underflow")
        return self.stack[-1]


def _tuple_literal(lits: list[Any]) -> Any:
    if len(lits) <= _MAX_LITERAL_TUPLE and all(v is not NOT_A_LITERAL for v in lits):
        return tuple(lits)
    return NOT_A_LITERAL


def apply_opcode(m: StackModel, name: str, arg: Any, ops: int, globals_: list, pids: list) -> None:
    """Apply one opcode to the model (see pickletools' opcode table for the stack effects)."""
    if name in _ATOMS:
        m.push(0, _literal(_CONSTANTS.get(name, arg)))
    elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE"):
        m.push(m.new([]), () if name == "EMPTY_TUPLE" else NOT_A_LITERAL)
    elif name == "MARK":
        if len(m.stack) + len(m.marks) >= m.lim.max_stack:
            raise PickleGuardError(f"more than {m.lim.max_stack:,} values on the unpickler's stack")
        m.marks.append(len(m.stack))
    elif name in ("TUPLE", "LIST", "DICT", "FROZENSET", "OBJ"):
        nodes, lits = m.pop_mark()
        m.push(m.new(nodes), _tuple_literal(lits) if name == "TUPLE" else NOT_A_LITERAL)
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        k = int(name[-1])
        popped = [m.pop() for _ in range(k)][::-1]
        m.push(m.new([n for n, _ in popped]), _tuple_literal([v for _, v in popped]))
    elif name == "INST":
        nodes, _ = m.pop_mark()
        module, _, qual = arg.partition(" ")
        globals_.append(GlobalRef(module, qual))
        m.push(m.new(nodes))
    elif name in ("APPEND", "SETITEM"):
        children = [m.pop()[0] for _ in range(1 if name == "APPEND" else 2)]
        m.add(m.top(), children)
    elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
        nodes, _ = m.pop_mark()
        m.add(m.top(), nodes)
    elif name == "BUILD":
        state, _ = m.pop()
        m.add(m.top(), [state])
    elif name == "REDUCE":
        args, _ = m.pop()
        func, _ = m.pop()
        m.push(m.new([func, args]))
    elif name == "NEWOBJ":
        args, _ = m.pop()
        cls, _ = m.pop()
        m.push(m.new([cls, args]))
    elif name == "NEWOBJ_EX":
        popped = [m.pop()[0] for _ in range(3)]
        m.push(m.new(popped))
    elif name == "GLOBAL":
        module, _, qual = arg.partition(" ")
        ref = GlobalRef(module, qual)
        globals_.append(ref)
        m.push(0, ref)
    elif name == "STACK_GLOBAL":
        (_, qual), (_, module) = m.pop(), m.pop()
        ref = GlobalRef(module if isinstance(module, str) else "?", qual if isinstance(qual, str) else "?")
        globals_.append(ref)
        m.push(0, ref)
    elif name in ("EXT1", "EXT2", "EXT4"):
        globals_.append(GlobalRef("<copyreg extension>", str(arg)))
        m.push(0)
    elif name == "PERSID":
        pids.append(_literal(arg))
        m.push(0)
    elif name == "BINPERSID":
        _, lit = m.pop()
        pids.append(None if lit is NOT_A_LITERAL else lit)
        m.push(0)
    elif name == "POP":
        if m.marks and len(m.stack) == m.marks[-1]:
            m.marks.pop()
        else:
            m.pop()
    elif name == "POP_MARK":
        m.pop_mark()
    elif name == "DUP":
        m.push(m.top(), m.lits[-1])
    elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
        index = len(m.memo) if name == "MEMOIZE" else arg
        if index > ops or index >= m.lim.max_memo:
            raise malformed(f"memo index {index:,} out of range (the unpickler would allocate a memo "
                             "table that large)")
        m.memo[index] = (m.top(), m.lits[-1])
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        if arg not in m.memo:
            raise malformed(f"malformed pickle: memo index {arg} read before it was written")
        m.push(*m.memo[arg])
    elif name in ("BYTEARRAY8", "NEXT_BUFFER"):
        m.push(0)
    elif name == "READONLY_BUFFER":
        m.top()
    elif name in ("PROTO", "FRAME", "STOP"):
        pass
    else:  # an opcode pickletools knows and this model does not: refuse rather than guess
        raise malformed(f"unsupported pickle opcode {name}")
