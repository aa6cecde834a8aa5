"""CEL conditions over the request context, compiled once.

A condition is parsed by ``celpy`` (the CEL grammar and its literal rules) and then
compiled to a tree of Python closures for the subset routing rules use — field access,
comparisons, ``in``, arithmetic, ``&&``/``||``/``!``, ``?:``, ``has()``, ``size()``,
``startsWith``/``endsWith``/``contains``/``matches``. That runs in about a microsecond
where celpy's interpreter takes 30-250 µs, which matters when a decision must cost
microseconds. Any expression outside the subset (macros such as ``exists``, type
conversions, map literals...) is evaluated by celpy itself, so every CEL expression works.

Semantics follow CEL with strict typing: comparing values of different types (``1 == 1.0``,
``"a" < 1``) is an error, ``null`` equals only ``null``; an error makes the condition false
(the rule does not match) except where ``&&``/``||`` absorb it as CEL specifies.

Sizes may be written with units: ``build.size > 10GB``, ``10 * GB``, ``1.5MB``
(KB/MB/GB/TB are powers of 1024).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

UNITS: dict[str, int] = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}

# Top-level names a condition may read (see rules.activation).
VARIABLES: dict[str, str] = {
    "user": "the caller: id, roles and attributes such as region",
    "tenant": "the tenant id",
    "operation": "qualified operation, e.g. 'git.create_repository'",
    "service": "git | cicd | docs | project",
    "effect": "read | write",
    "resource": "every fact parsed from the params",
    "build": "build facts: size (bytes), public",
    "org": "repository owner, or null",
    "repo": "repository 'owner/name', or null",
    "name": "repository name, or null",
    "private": "repository visibility, or null",
}

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_MACROS = frozenset({"exists", "all", "exists_one", "map", "filter"})

_STRING = re.compile(
    r"""[rRbB]{0,2}(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')""",
    re.S)
_SIZED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB)\b")
_UNIT = re.compile(r"(?<![\w.])(KB|MB|GB|TB)\b(?!\s*\()")


class ConditionError(ValueError):
    pass


class CelError(Exception):
    """A CEL evaluation error (no such key, no matching overload, overflow...): no match."""


class _Unsupported(Exception):
    """The expression is outside the natively compiled subset: celpy evaluates it."""


Fn = Callable[[Mapping[str, Any]], Any]


def expand_units(text: str) -> str:
    """Replace ``10GB``/``GB`` outside string literals by integers."""
    out: list[str] = []
    pos = 0
    for m in _STRING.finditer(text):
        out.append(_expand_code(text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_expand_code(text[pos:]))
    return "".join(out)


def _expand_code(code: str) -> str:
    code = _SIZED.sub(lambda m: str(int(float(m.group(1)) * UNITS[m.group(2)])
                                    if "." in m.group(1) else int(m.group(1)) * UNITS[m.group(2)]), code)
    return _UNIT.sub(lambda m: str(UNITS[m.group(1)]), code)


@lru_cache(maxsize=1)
def _env() -> Any:
    import celpy

    return celpy.Environment()


@dataclass(frozen=True, slots=True, eq=False)
class Condition:
    source: str
    expanded: str
    native: bool
    variables: frozenset[str]
    # (path, (kind, literal)) when the condition holds only if the value at path equals the
    # literal (a top-level `a.b == "x"` conjunct): lets the matcher index the rule.
    index_key: tuple[tuple[str, ...], tuple[str, Any]] | None
    # Every variable path the condition reads (``("user", "region")``; a bare root when it
    # reads a whole variable): the decision cache keys on these values only.
    paths: frozenset[tuple[str, ...]]
    # Returns the value (a match is exactly True) or raises CelError.
    fn: Fn = field(repr=False)
    _ast: Any = field(repr=False)

    def matches(self, act: Mapping[str, Any]) -> bool:
        try:
            return self.fn(act) is True
        except CelError:
            return False

    def matches_celpy(self, act: Mapping[str, Any]) -> bool:
        """Evaluate with celpy's own interpreter (the reference evaluator's path)."""
        return _celpy_matches(self.expanded, act)


@lru_cache(maxsize=65536)
def compile_condition(text: str) -> Condition:
    """Parse, check and compile a condition; raise ConditionError naming the problem."""
    import celpy

    expanded = expand_units(text)
    try:
        ast = _env().compile(expanded)
    except celpy.CELParseError as exc:  # type: ignore[attr-defined]
        col = getattr(exc, "column", None)
        where = f" at column {col}" if col else ""
        near = (f" (near {expanded[col - 1:col + 9]!r})" if col and col <= len(expanded)
                else " (unexpected end)")
        raise ConditionError(f"invalid CEL condition {text!r}: syntax error{where}{near}") from None
    names = _free_identifiers(ast)
    unknown = sorted(names - set(VARIABLES))
    if unknown:
        raise ConditionError(f"condition {text!r} reads unknown variable {unknown[0]!r}; "
                             f"conditions can read: {', '.join(VARIABLES)}")
    try:
        fn: Fn = _Compiler().expr(ast)
        native = True
    except _Unsupported:
        fn = _celpy_fn(expanded)
        native = False
    return Condition(text, expanded, native, frozenset(names), _index_key(ast), _paths(ast), fn, ast)


# ---------------------------------------------------------------------------
# celpy fallback / reference


def _celpy_fn(expanded: str) -> Fn:
    env = _env()
    prog = env.program(env.compile(expanded))

    def run(act: Mapping[str, Any]) -> Any:
        from celpy import celtypes

        try:
            r = prog.evaluate(_to_cel(act))
        except Exception as exc:
            raise CelError(str(exc)) from None
        return bool(r) if isinstance(r, celtypes.BoolType) else r

    return run


@lru_cache(maxsize=4096)
def _celpy_program(expanded: str) -> Any:
    env = _env()
    return env.program(env.compile(expanded))


def _to_cel(act: Mapping[str, Any]) -> dict[str, Any]:
    import celpy

    complete = getattr(act, "complete", None)
    if complete is not None:  # a lazy activation: celpy needs every variable
        act = complete()
    return {k: celpy.json_to_cel(v) for k, v in act.items()}  # type: ignore[attr-defined]


def _celpy_matches(expanded: str, act: Mapping[str, Any]) -> bool:
    from celpy import celtypes

    try:
        r = _celpy_program(expanded).evaluate(_to_cel(act))
    except Exception:
        return False
    return isinstance(r, celtypes.BoolType) and bool(r)


# ---------------------------------------------------------------------------
# AST helpers


def _name(node: Any) -> str:
    return str(node.data)


def _kids(node: Any) -> list[Any]:
    return [c for c in node.children if c is not None]


def _free_identifiers(ast: Any) -> set[str]:
    import lark

    found: set[str] = set()

    def walk(node: Any, bound: frozenset[str]) -> None:
        if not isinstance(node, lark.Tree):
            return
        kind = _name(node)
        if kind == "ident":
            name = str(node.children[0])
            if name not in bound:
                found.add(name)
            return
        if kind == "member_dot_arg":
            kids = _kids(node)
            target, method = kids[0], str(kids[1])
            args = _kids(kids[2]) if len(kids) > 2 else []
            walk(target, bound)
            if method in _MACROS and args:
                var = _ident_of(args[0])
                inner = bound | {var} if var else bound
                for a in args[1:]:
                    walk(a, inner)
                return
            for a in args:
                walk(a, bound)
            return
        if kind in ("member_dot", "member_object"):
            walk(node.children[0], bound)
            for c in node.children[1:]:
                if isinstance(c, lark.Tree):
                    walk(c, bound)
            return
        for c in node.children:
            walk(c, bound)

    walk(ast, frozenset())
    return found


def _paths(ast: Any) -> frozenset[tuple[str, ...]]:
    """The variable paths an expression reads: maximal ``a.b["c"]`` chains from a free name."""
    import lark

    out: set[tuple[str, ...]] = set()

    def chain(node: Any) -> tuple[str, ...] | None:
        node = _unwrap(node)
        kind = _name(node)
        if kind == "ident":
            return (str(node.children[0]),)
        if kind == "member_dot":
            base = chain(node.children[0])
            return None if base is None else (*base, str(node.children[1]))
        if kind == "member_index":
            base = chain(node.children[0])
            key = _literal_value(_unwrap(node.children[1]))
            if base is not None and key is not None and key[0] == "string":
                return (*base, key[1])
        return None

    def walk(node: Any, bound: frozenset[str]) -> None:
        if not isinstance(node, lark.Tree):
            return
        c = chain(node)
        if c is not None:
            if c[0] not in bound:
                out.add(c)
            return
        kind = _name(node)
        if kind in ("member_dot", "member_index"):
            base = chain(node.children[0])
            if base is not None and base[0] not in bound:
                out.add(base)
            else:
                walk(node.children[0], bound)
            for k in node.children[1:]:
                walk(k, bound)
            return
        if kind == "member_dot_arg":
            kids = _kids(node)
            walk(kids[0], bound)
            args = _kids(kids[2]) if len(kids) > 2 else []
            inner = bound
            if str(kids[1]) in _MACROS and args:
                var = _ident_of(args[0])
                inner = bound | {var} if var else bound
                args = args[1:]
            for a in args:
                walk(a, inner)
            return
        for k in node.children:
            walk(k, bound)

    walk(ast, frozenset())
    return frozenset(p for p in out if p[0] in VARIABLES)


def _ident_of(expr: Any) -> str | None:
    """The identifier an expression consists of, if it is just one (macro variables)."""
    import lark

    node = expr
    while isinstance(node, lark.Tree):
        kids = _kids(node)
        if _name(node) == "ident":
            return str(node.children[0])
        if len(kids) != 1:
            return None
        node = kids[0]
    return None


def _unwrap(node: Any) -> Any:
    """Skip single-child precedence levels (expr -> conditionalor -> ... -> primary)."""
    import lark

    while isinstance(node, lark.Tree) and _name(node) in (
            "expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
            "unary", "member", "primary") and len(_kids(node)) == 1:
        node = _kids(node)[0]
    return node


def _conjuncts(ast: Any) -> list[Any]:
    node = ast
    while _name(node) in ("expr", "conditionalor") and len(_kids(node)) == 1:
        node = _kids(node)[0]
    if _name(node) == "paren_expr":
        return _conjuncts(_kids(node)[0])
    if _name(node) != "conditionaland":
        return [node]
    out: list[Any] = []
    while _name(node) == "conditionaland" and len(_kids(node)) == 2:
        out.append(_kids(node)[1])
        node = _kids(node)[0]
    out.append(node)
    return out


def _path(node: Any) -> tuple[str, ...] | None:
    node = _unwrap(node)
    kind = _name(node)
    if kind == "ident":
        return (str(node.children[0]),)
    if kind == "member_dot":
        base = _path(node.children[0])
        return None if base is None else (*base, str(node.children[1]))
    if kind == "member_index":
        base = _path(node.children[0])
        key = _literal_value(_unwrap(node.children[1]))
        if base is None or key is None or key[0] != "string":
            return None
        return (*base, key[1])
    return None


def _literal_value(node: Any) -> tuple[str, Any] | None:
    if _name(node) != "literal":
        return None
    tok = node.children[0]
    t = tok.type
    if t == "INT_LIT":
        return ("int", int(str(tok), 0))
    if t == "BOOL_LIT":
        return ("bool", str(tok) == "true")
    if t == "STRING_LIT":
        return ("string", str(_literal_via_celpy(str(tok))))
    return None


@lru_cache(maxsize=4096)
def _literal_via_celpy(text: str) -> Any:
    return _celpy_program(text).evaluate({})


def _index_key(ast: Any) -> tuple[tuple[str, ...], tuple[str, Any]] | None:
    for c in _conjuncts(ast):
        node = _unwrap(c)
        if _name(node) != "relation" or len(_kids(node)) != 2:
            continue
        op = _kids(node)[0]
        if _name(op) != "relation_eq":
            continue
        left, right = _kids(op)[0], _kids(node)[1]
        for a, b in ((left, right), (right, left)):
            path = _path(a)
            lit = _literal_value(_unwrap(b))
            if path is not None and lit is not None and path[0] in VARIABLES:
                return path, lit
    return None


# ---------------------------------------------------------------------------
# Native evaluation


def kind_of(v: Any) -> str:
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "double"
    if t is str:
        return "string"
    if v is None:
        return "null"
    if t is list or t is tuple:
        return "list"
    if t is dict:
        return "map"
    return t.__name__


_SCALAR = frozenset({str, int, float, bool})


def _eq(a: Any, b: Any) -> bool:
    ta = type(a)
    if ta is type(b) and ta in _SCALAR:  # the common case, without classifying both sides
        return bool(a == b)
    ka, kb = kind_of(a), kind_of(b)
    if ka == "null" or kb == "null":
        return ka == kb
    if ka != kb:
        raise CelError(f"no matching overload for {ka} == {kb}")
    if ka == "list":
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    return bool(a == b)


_ORDERED = frozenset({"int", "double", "string", "bool"})


def _cmp_check(a: Any, b: Any) -> None:
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb or ka not in _ORDERED:
        raise CelError(f"no matching overload for {ka} < {kb}")


def _int(v: int) -> int:
    if v < _INT_MIN or v > _INT_MAX:
        raise CelError("integer overflow")
    return v


def _arith(op: str, a: Any, b: Any) -> Any:
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        raise CelError(f"no matching overload for {ka} {op} {kb}")
    if ka == "int":
        if op == "+":
            return _int(a + b)
        if op == "-":
            return _int(a - b)
        if op == "*":
            return _int(a * b)
        if b == 0:
            raise CelError("divide by zero")
        q = abs(a) // abs(b)
        q = q if (a >= 0) == (b >= 0) else -q
        return _int(q) if op == "/" else _int(a - b * q)
    if ka == "double":
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                return math.copysign(math.inf, a) * math.copysign(1.0, b) if a != 0 else math.nan
            return a / b
        raise CelError("no matching overload for double %")
    if op == "+" and ka in ("string", "list"):
        return a + b
    raise CelError(f"no matching overload for {ka} {op} {kb}")


def _size(v: Any) -> int:
    if kind_of(v) in ("string", "list", "map"):
        return len(v)
    raise CelError(f"no matching overload for size({kind_of(v)})")


def _member(v: Any, key: str) -> Any:
    if type(v) is not dict:
        raise CelError(f"no field {key!r} on {kind_of(v)}")
    try:
        return v[key]
    except KeyError:
        raise CelError(f"no such key {key!r}") from None


def _index(v: Any, k: Any) -> Any:
    kv = kind_of(v)
    if kv == "map":
        try:
            return v[k]
        except (KeyError, TypeError):
            raise CelError(f"no such key {k!r}") from None
    if kv == "list":
        if kind_of(k) != "int" or not 0 <= k < len(v):
            raise CelError("invalid list index")
        return v[k]
    raise CelError(f"cannot index {kv}")


def _str_method(name: str, target: Any, arg: Any) -> bool:
    if kind_of(target) != "string" or kind_of(arg) != "string":
        raise CelError(f"no matching overload for {name}")
    if name == "startsWith":
        return bool(target.startswith(arg))
    if name == "endsWith":
        return bool(target.endswith(arg))
    if name == "contains":
        return arg in target
    try:
        return re.search(arg, target) is not None
    except re.error:
        raise CelError("invalid regular expression") from None


class _Compiler:
    """lark tree (celpy's CEL grammar) -> closure over the activation."""

    def expr(self, node: Any) -> Fn:
        kids = _kids(node)
        kind = _name(node)
        handler = getattr(self, "_" + kind, None)
        if handler is None:
            raise _Unsupported(kind)
        fn: Fn = handler(node, kids)
        return fn

    # precedence levels -------------------------------------------------------
    def _expr(self, node: Any, kids: list[Any]) -> Fn:
        if len(kids) == 1:
            return self.expr(kids[0])
        c, a, b = (self.expr(k) for k in kids)

        def ternary(act: Mapping[str, Any]) -> Any:
            v = c(act)
            if type(v) is not bool:
                raise CelError("ternary condition is not a bool")
            return a(act) if v else b(act)

        return ternary

    def _conditionalor(self, node: Any, kids: list[Any]) -> Fn:
        if len(kids) == 1:
            return self.expr(kids[0])
        left, right = self.expr(kids[0]), self.expr(kids[1])

        def or_(act: Mapping[str, Any]) -> Any:
            err: CelError | None = None
            try:
                lv = left(act)
                if lv is True:
                    return True
                if lv is not False:
                    err = CelError("|| on a non-bool")
            except CelError as e:
                err = e
            rv = right(act)  # may raise: error || error is an error
            if rv is True:
                return True
            if rv is not False:
                raise CelError("|| on a non-bool")
            if err is not None:
                raise err
            return False

        return or_

    def _conditionaland(self, node: Any, kids: list[Any]) -> Fn:
        if len(kids) == 1:
            return self.expr(kids[0])
        left, right = self.expr(kids[0]), self.expr(kids[1])

        def and_(act: Mapping[str, Any]) -> Any:
            err: CelError | None = None
            try:
                lv = left(act)
                if lv is False:
                    return False
                if lv is not True:
                    err = CelError("&& on a non-bool")
            except CelError as e:
                err = e
            rv = right(act)
            if rv is False:
                return False
            if rv is not True:
                raise CelError("&& on a non-bool")
            if err is not None:
                raise err
            return True

        return and_

    def _relation(self, node: Any, kids: list[Any]) -> Fn:
        if len(kids) == 1:
            return self.expr(kids[0])
        opnode, rnode = kids
        op = _name(opnode)
        a, b = self.expr(_kids(opnode)[0]), self.expr(rnode)
        if op in ("relation_eq", "relation_ne"):
            return _equality(a, b, op == "relation_ne")
        if op == "relation_in":
            def in_(act: Mapping[str, Any]) -> bool:
                x, container = a(act), b(act)
                kc = kind_of(container)
                if kc == "list":
                    tx = type(x)
                    for e in container:
                        if type(e) is tx and tx in _SCALAR:
                            if e == x:
                                return True
                        elif _eq(x, e):  # other kinds: CEL's rules (an error, or null)
                            return True
                    return False
                if kc == "map":
                    if kind_of(x) != "string":
                        raise CelError("no matching overload for in map")
                    return x in container
                raise CelError(f"no matching overload for in {kc}")

            return in_
        cmp: Callable[[Any, Any], Any] = {"relation_lt": operator.lt, "relation_le": operator.le,
                                          "relation_gt": operator.gt, "relation_ge": operator.ge}[op]

        def compare(act: Mapping[str, Any]) -> bool:
            x, y = a(act), b(act)
            _cmp_check(x, y)
            return bool(cmp(x, y))

        return compare

    def _addition(self, node: Any, kids: list[Any]) -> Fn:
        if len(kids) == 1:
            return self.expr(kids[0])
        opnode, rnode = kids
        sym = "+" if _name(opnode) == "addition_add" else "-"
        return self._binary(sym, self.expr(_kids(opnode)[0]), self.expr(rnode))

    def _multiplication(self, node: Any, kids: list[Any]) -> Fn:
        if len(kids) == 1:
            return self.expr(kids[0])
        opnode, rnode = kids
        sym = {"multiplication_mul": "*", "multiplication_div": "/", "multiplication_mod": "%"}[_name(opnode)]
        return self._binary(sym, self.expr(_kids(opnode)[0]), self.expr(rnode))

    def _binary(self, sym: str, a: Fn, b: Fn) -> Fn:
        consts = [getattr(f, "constant", _NOCONST) for f in (a, b)]
        if _NOCONST not in consts:  # fold `10 * 1073741824` once
            try:
                return _const(_arith(sym, consts[0], consts[1]))
            except CelError:
                pass
        return lambda act: _arith(sym, a(act), b(act))

    def _unary(self, node: Any, kids: list[Any]) -> Fn:
        if len(kids) == 1:
            return self.expr(kids[0])
        opnode, inner_node = kids
        inner = self.expr(inner_node)
        if _name(opnode) == "unary_not":
            def not_(act: Mapping[str, Any]) -> bool:
                v = inner(act)
                if type(v) is not bool:
                    raise CelError("! on a non-bool")
                return not v

            return not_

        def neg(act: Mapping[str, Any]) -> Any:
            v = inner(act)
            k = kind_of(v)
            if k == "int":
                return _int(-v)
            if k == "double":
                return -v
            raise CelError(f"no matching overload for -{k}")

        c = getattr(inner, "constant", _NOCONST)
        if c is not _NOCONST:
            try:
                return _const(neg({}))
            except CelError:
                pass
        return neg

    def _member(self, node: Any, kids: list[Any]) -> Fn:
        return self.expr(kids[0])

    def _primary(self, node: Any, kids: list[Any]) -> Fn:
        return self.expr(kids[0])

    def _paren_expr(self, node: Any, kids: list[Any]) -> Fn:
        return self.expr(kids[0])

    # leaves and access --------------------------------------------------------
    def _literal(self, node: Any, kids: list[Any]) -> Fn:
        tok = node.children[0]
        t = tok.type
        if t == "INT_LIT":
            return _const(_int(int(str(tok), 0)))
        if t == "FLOAT_LIT":
            return _const(float(str(tok)))
        if t == "BOOL_LIT":
            return _const(str(tok) == "true")
        if t == "NULL_LIT":
            return _const(None)
        if t in ("STRING_LIT", "MLSTRING_LIT"):
            return _const(str(_literal_via_celpy(str(tok))))
        raise _Unsupported(t)

    def _ident(self, node: Any, kids: list[Any]) -> Fn:
        name = str(node.children[0])

        def var(act: Mapping[str, Any]) -> Any:
            try:
                return act[name]
            except KeyError:
                raise CelError(f"undeclared reference to {name!r}") from None

        return var

    def _member_dot(self, node: Any, kids: list[Any]) -> Fn:
        path = _path(node)
        if path is not None:
            return _path_getter(path)  # `user.region`: one closure instead of one per step
        target = self.expr(kids[0])
        key = str(kids[1])
        return lambda act: _member(target(act), key)

    def _member_index(self, node: Any, kids: list[Any]) -> Fn:
        target, key = self.expr(kids[0]), self.expr(kids[1])
        return lambda act: _index(target(act), key(act))

    def _list_lit(self, node: Any, kids: list[Any]) -> Fn:
        items = [self.expr(k) for k in _kids(kids[0])] if kids else []
        consts = [getattr(f, "constant", _NOCONST) for f in items]
        if _NOCONST not in consts:
            return _const(consts)
        return lambda act: [f(act) for f in items]

    def _ident_arg(self, node: Any, kids: list[Any]) -> Fn:
        fname = str(kids[0])
        args = _kids(kids[1]) if len(kids) > 1 else []
        if fname == "has" and len(args) == 1:
            target = _unwrap(args[0])
            if _name(target) != "member_dot":
                raise _Unsupported("has() of a non-field")
            obj = self.expr(target.children[0])
            key = str(target.children[1])

            def has(act: Mapping[str, Any]) -> bool:
                v = obj(act)
                if type(v) is not dict:
                    raise CelError("has() on a non-map")
                return key in v

            return has
        if fname == "size" and len(args) == 1:
            arg = self.expr(args[0])
            return lambda act: _size(arg(act))
        raise _Unsupported(fname)

    def _member_dot_arg(self, node: Any, kids: list[Any]) -> Fn:
        target = self.expr(kids[0])
        method = str(kids[1])
        args = [self.expr(a) for a in _kids(kids[2])] if len(kids) > 2 else []
        if method == "size" and not args:
            return lambda act: _size(target(act))
        if method in ("startsWith", "endsWith", "contains", "matches") and len(args) == 1:
            arg = args[0]
            return lambda act: _str_method(method, target(act), arg(act))
        raise _Unsupported(method)


_NOCONST = object()


def _equality(a: Fn, b: Fn, negate: bool) -> Fn:
    """``==``/``!=``, with the common `value == literal` compared without calling the literal."""
    cb = getattr(b, "constant", _NOCONST)
    if cb is not _NOCONST and type(cb) in _SCALAR:
        tb = type(cb)
        if negate:
            def ne_const(act: Mapping[str, Any]) -> bool:
                v = a(act)
                return v != cb if type(v) is tb else not _eq(v, cb)

            return ne_const

        def eq_const(act: Mapping[str, Any]) -> bool:
            v = a(act)
            return v == cb if type(v) is tb else _eq(v, cb)

        return eq_const
    if negate:
        return lambda act: not _eq(a(act), b(act))
    return lambda act: _eq(a(act), b(act))


def _path_getter(path: tuple[str, ...]) -> Fn:
    """A variable path read in one step; absent keys and non-maps are CEL errors."""
    root, rest = path[0], path[1:]

    def get(act: Mapping[str, Any]) -> Any:
        try:
            v = act[root]
        except KeyError:
            raise CelError(f"undeclared reference to {root!r}") from None
        for key in rest:
            if type(v) is not dict:
                raise CelError(f"no field {key!r} on {kind_of(v)}")
            try:
                v = v[key]
            except KeyError:
                raise CelError(f"no such key {key!r}") from None
        return v

    return get


def _const(value: Any) -> Fn:
    def constant(act: Mapping[str, Any]) -> Any:
        return value

    constant.constant = value  # type: ignore[attr-defined]
    return constant
