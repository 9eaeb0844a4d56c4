"""Sandboxed Jinja for templates written by stack authors: no way out, and bounded cost.

Jinja's immutable sandbox already refuses ``_``-prefixed attributes, mutation and unsafe
callables. On top of it this module:

* offers no globals but the generators below and no loader, so ``{% include %}``,
  ``{% import %}`` and ``{% extends %}`` are rejected when the template compiles;
* drops the ``attr`` filter (``getattr`` by name) and ``urlize`` (HTML only) and swaps the filters
  and ``str`` methods that can multiply their input (``center``, ``indent``, ``join``,
  ``replace``, ``format``, ``batch``, ``slice``, ``wordwrap``, ``tojson``, ``ljust``, …) for
  versions that check the size of the result before building it;
* intercepts ``*``, ``**``, ``+`` and ``%``, and rewrites ``~``, ``for`` loops, macros and
  non-constant list/tuple/dict literals to go through size and work checks, so no string or
  collection grows past ``MAX_LENGTH`` and one render does at most ``MAX_STEPS`` loop iterations
  and calls and ``MAX_WORK`` characters of work;
* turns off compile-time constant folding, so filters do not run while compiling;
* caps what one template renders to ``MAX_OUTPUT`` characters.

Every failure, including a sandbox violation, becomes a :class:`TemplateError`: one sentence that
names types, attributes and keys, never an object's repr.
"""

from __future__ import annotations

import functools
import math
import random
import re
import secrets
import string
import uuid as uuid_module
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import filters, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import consume
from jinja2.visitor import NodeTransformer

MAX_SOURCE = 1024 * 1024
MAX_OUTPUT = 1024 * 1024
MAX_LENGTH = 1_000_000
MAX_INT_BITS = 1024
MAX_STEPS = 100_000
MACRO_STEPS = 10  # a macro call costs as much as ten loop iterations
MAX_WORK = 8_000_000
MAX_SLICES = 10_000
MAX_JSON_INDENT = 8

_SYMBOLS = "-_."  # safe in URLs, shells and YAML
_PASSWORD_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _SYMBOLS)
_ALPHANUMERIC = string.ascii_letters + string.digits
_SYSTEM_RANDOM = secrets.SystemRandom()


class TemplateError(Exception):
    """A template that does not compile or render; ``message`` is one readable sentence."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- budget -----------------------------------------------------------------------------------


@dataclass
class _Budget:
    rng: random.Random
    steps: int = MAX_STEPS
    work: int = MAX_WORK


_BUDGET: ContextVar[_Budget | None] = ContextVar("windflow_template_budget", default=None)


def _charge(work: int = 0, steps: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.work -= max(work, 0)  # a negative size ("'a' * -5") must not buy credit
    budget.steps -= steps
    if budget.steps < 0:
        raise TemplateError(f"the template runs too long (more than {MAX_STEPS} loop iterations and calls)")
    if budget.work < 0:
        raise TemplateError(f"the template does too much work (more than {MAX_WORK} characters built)")


def _rng() -> random.Random:
    budget = _BUDGET.get()
    return budget.rng if budget is not None else _SYSTEM_RANDOM


def _need(length: Any) -> None:
    """Refuse to build a string of ``length`` characters when that is too long."""
    if not isinstance(length, int):
        return  # not a size: the operation itself will raise its TypeError
    if length > MAX_LENGTH:
        raise TemplateError(f"the result would be longer than {MAX_LENGTH} characters")
    _charge(work=length)


def _size(value: Any) -> int:
    """Roughly how many characters ``value`` prints as; refuses past ``MAX_LENGTH``."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, list | tuple | set | frozenset | dict):
            total += 1 + len(item)
            if total <= MAX_LENGTH:
                stack.extend(item)
                if isinstance(item, dict):
                    stack.extend(item.values())
        else:
            total += 1
        if total > MAX_LENGTH:
            raise TemplateError(f"the value would be larger than {MAX_LENGTH} characters or items")
    _charge(work=total)
    return total


# --- generators -------------------------------------------------------------------------------


class TemplateFunction:
    """A template global; its repr hides the function and ``_`` attributes are off limits."""

    __slots__ = ("_function", "_name")

    def __init__(self, function: Callable[..., str | int]) -> None:
        self._function = function
        self._name = function.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> str | int:
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<generator {self._name}>"


def _int_argument(name: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise TemplateError(f"{name} must be an integer from {low} to {high}")
    return value


def generate_password(length: int = 24) -> str:
    length = _int_argument("generate_password: length", length, 8, 256)
    alphabet = "".join(_PASSWORD_CLASSES)
    chars = [secrets.choice(group) for group in _PASSWORD_CLASSES]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    _SYSTEM_RANDOM.shuffle(chars)
    return "".join(chars)


def generate_secret(length: int = 32) -> str:
    length = _int_argument("generate_secret: length", length, 8, 512)
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def random_port(low: int = 20000, high: int = 60000) -> int:
    low = _int_argument("random_port: low", low, 1, 65535)
    high = _int_argument("random_port: high", high, low, 65535)
    return _rng().randint(low, high)


def uuid() -> str:
    return str(uuid_module.UUID(int=_rng().getrandbits(128), version=4))


GENERATORS: dict[str, Callable[..., str | int]] = {
    f.__name__: f for f in (generate_password, generate_secret, random_port, uuid)
}


# --- guarded filters and formatting -----------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)


def _spec_width(digits: str) -> int:
    if len(digits) > 7:
        raise TemplateError(f"a format width or precision is larger than {MAX_LENGTH}")
    return int(digits)


def _check_percent(template: str, arguments: Any) -> None:
    """Refuse ``template % arguments`` when its widths or repetitions would blow up."""
    total, fields = len(template), 0
    for match in _PERCENT_SPEC.finditer(template):
        if match[3] == "%":
            continue
        fields += 1
        for part in match.group(1, 2):
            if part == "*":
                raise TemplateError("'*' widths are not allowed in % formatting")
            total += _spec_width(part) if part else 0
    _need(total + fields * _size(arguments))


def _check_str_format(template: str, arguments: Any) -> None:
    total, fields = len(template), 0
    for _text, field, spec, _conversion in string.Formatter().parse(template):
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise TemplateError("format specs must not contain replacement fields")
        total += sum(_spec_width(digits) for digits in re.findall(r"\d+", spec or ""))
    _need(total + fields * _size(arguments))


def _check_replace(text: str | bytes, old: Any, new: Any, count: Any) -> None:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _need(len(text) + hits * max(0, len(new) - len(old)))


def _joined(separator: str | bytes, items: Iterator[Any]) -> list[Any]:
    """The items of ``separator.join(items)``, refusing them as soon as the result gets too long."""
    parts, total = [], -len(separator)
    for item in items:
        total += len(separator) + (len(item) if isinstance(item, str | bytes) else 0)
        if total > MAX_LENGTH:
            _need(total)
        parts.append(item)
    _need(max(total, 0))
    return parts


def _center(value: Any, width: int = 80) -> str:
    _need(width)
    return filters.do_center(value, width)


def _indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(value)
    _need(len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str) else width))
    return filters.do_indent(text, width, first, blank)


@jinja2.pass_eval_context
def _replace(eval_ctx: nodes.EvalContext, value: Any, old: Any, new: Any, count: int | None = None) -> str:
    _check_replace(str(value), str(old), str(new), count)
    return filters.do_replace(eval_ctx, value, old, new, count)


@jinja2.pass_environment
def _join(environment: jinja2.Environment, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    if attribute is not None:
        value = map(filters.make_attrgetter(environment, attribute), value)
    separator = str(d)
    return separator.join(_joined(separator, (str(item) for item in value)))


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise TemplateError("the format filter takes positional or keyword arguments, not both")
    template, arguments = str(value), kwargs or args
    _check_percent(template, arguments)
    return template % arguments


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    if fill_with is not None:
        _need(linecount * _size(fill_with))
    return filters.do_batch(value, linecount, fill_with)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    if isinstance(slices, int) and slices > MAX_SLICES:
        raise TemplateError(f"slice makes at most {MAX_SLICES} slices")
    if fill_with is not None:
        _need(slices * _size(fill_with))
    return filters.sync_do_slice(value, slices, fill_with)


@jinja2.pass_environment
def _wordwrap(
    environment: jinja2.Environment,
    value: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    text = str(value)
    wrap = environment.newline_sequence if wrapstring is None else str(wrapstring)
    _need((len(text) + 1) * (1 + len(wrap)))  # at worst one line per character
    return filters.do_wordwrap(environment, text, width, break_long_words, wrap, break_on_hyphens)


@jinja2.pass_eval_context
def _tojson(eval_ctx: nodes.EvalContext, value: Any, indent: Any = None) -> str:
    if (len(indent) if isinstance(indent, str) else indent or 0) > MAX_JSON_INDENT:
        raise TemplateError(f"tojson indents by at most {MAX_JSON_INDENT}")
    return str(filters.do_tojson(eval_ctx, value, indent))


@jinja2.pass_context
def _random(context: Context, seq: Any) -> Any:
    try:
        return _rng().choice(seq)
    except IndexError:
        return context.environment.undefined("No random item, sequence was empty.")


GUARDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "replace": _replace,
    "join": _join,
    "format": _format,
    "batch": _batch,
    "slice": _slice,
    "wordwrap": _wordwrap,
    "tojson": _tojson,
    "random": _random,
}
DROPPED_FILTERS = ("attr", "urlize")
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def _guard_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a ``str``/``bytes``/``int`` method that can build a huge result."""
    first = args[0] if args else None
    if isinstance(owner, int):
        if name == "to_bytes":
            _need(kwargs.get("length", 1 if first is None else first))
        return args
    if name in _PADDING_METHODS:
        _need(kwargs.get("width", first))
    elif name == "expandtabs":
        tabsize = kwargs.get("tabsize", 8 if first is None else first)
        if isinstance(tabsize, int):
            _need(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * tabsize)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        args = (_joined(owner, iter(args[0])), *args[1:])
    elif name == "translate" and isinstance(owner, str):
        table = first.values() if isinstance(first, Mapping) else first if isinstance(first, list | tuple) else ()
        longest = max((len(v) for v in table if isinstance(v, str)), default=1)
        _need(len(owner) * max(1, longest))
    return args


_GUARDED_METHODS = frozenset({*_PADDING_METHODS, "expandtabs", "replace", "join", "translate", "to_bytes"})


# --- the environment --------------------------------------------------------------------------


def _call(name: str, lineno: int, *args: nodes.Node) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name, lineno=lineno), list(args), [], None, None, lineno=lineno)


def _static_cost(body: list[nodes.Node]) -> int:
    return 1 + sum(len(data.data) for statement in body for data in statement.find_all(nodes.TemplateData))


_LITERAL_PARTS = (nodes.Const, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair)


class _Guard(NodeTransformer):
    """Rewrites a template so loops, macros, ``~`` and built collections pay into the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise jinja2.TemplateSyntaxError("recursive loops are not allowed", node.lineno)
        self.generic_visit(node)
        node.iter = _call("guard_iterate", node.lineno, node.iter, nodes.Const(_static_cost(node.body)))
        return node

    def _charged_body(self, node: nodes.Macro | nodes.CallBlock | nodes.Block) -> nodes.Node:
        self.generic_visit(node)
        charge = _call("guard_charge", node.lineno, nodes.Const(_static_cost(node.body)))
        node.body.insert(0, nodes.Output([charge], lineno=node.lineno))
        return node

    visit_Macro = visit_CallBlock = visit_Block = _charged_body

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call("guard_concat", node.lineno, nodes.List(node.nodes, lineno=node.lineno))

    def _literal(self, node: nodes.List | nodes.Tuple | nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load" or all(
            isinstance(n, _LITERAL_PARTS) for n in node.find_all(nodes.Node)
        ):
            return node
        return _call("guard_container", node.lineno, node)

    visit_List = visit_Tuple = visit_Dict = _literal

    def _refuse(self, node: nodes.Node) -> nodes.Node:
        raise jinja2.TemplateSyntaxError("templates cannot include, import or extend other templates", node.lineno or 1)

    visit_Include = visit_Import = visit_FromImport = visit_Extends = _refuse


class _GuardedCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        _Guard().visit(node)
        node.set_environment(self.environment)
        super().visit_Template(node, frame)


def _printable(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict | set | frozenset):
        stack = [value]
        while stack:  # an Undefined inside would print as "Undefined"; raise its error instead
            item = stack.pop()
            if isinstance(item, jinja2.Undefined):
                str(item)
            elif isinstance(item, list | tuple | set | frozenset):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
    if isinstance(value, jinja2.Undefined) or not callable(value):
        return str(value)  # a StrictUndefined raises its error here
    raise TemplateError("cannot print a function or macro; call it")


@jinja2.pass_context  # needs the runtime, so constants are not finalized (or folded) at compile time
def _finalize(context: Context, value: Any) -> str:
    """Every ``{{ … }}`` output, also inside macros and blocks: its characters count as work."""
    text = _printable(value)
    _charge(work=len(text))
    return text


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _GuardedCodeGenerator

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_product(left, right)
        elif operator == "+":
            if isinstance(left, str | bytes) and isinstance(right, str | bytes):
                _need(len(left) + len(right))
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                _need(_size(left) + _size(right))
        elif operator == "%" and isinstance(left, str | bytes):
            _check_percent(left if isinstance(left, str) else left.decode("latin-1"), right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, jinja2.Undefined):
            str(obj)  # raises "'x' is undefined" rather than a complaint about Undefined's attributes
        value = super().getattr(obj, attribute)
        if attribute.startswith("_") and isinstance(value, jinja2.Undefined):
            return self.unsafe_undefined(obj, attribute)  # the same answer whether it exists or not
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, jinja2.Undefined):
            str(obj)
        return super().getitem(obj, argument)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _charge(steps=1)
        name = getattr(obj, "__name__", None)
        owner = getattr(obj, "__self__", None)
        if isinstance(name, str) and name in _GUARDED_METHODS and isinstance(owner, str | bytes | int):
            args = _guard_method(owner, name, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template: str = value.__self__
        format_map = value.__name__ == "format_map"

        def guarded(*args: Any, **kwargs: Any) -> str:
            _check_str_format(template, args[0] if format_map and args else (args, kwargs))
            return wrapper(*args, **kwargs)

        return guarded

    def guard_iterate(self, iterable: Any, cost: int) -> Iterator[Any]:
        for item in iterable:
            _charge(work=cost, steps=1)
            yield item

    def guard_charge(self, cost: int) -> str:
        _charge(work=cost, steps=MACRO_STEPS)
        return ""

    def guard_concat(self, parts: list[Any]) -> str:
        texts = [_printable(part) for part in parts]
        _need(sum(len(text) for text in texts))
        return "".join(texts)

    def guard_container(self, value: Any) -> Any:
        _size(value)
        return value


def _check_power(base: Any, exponent: Any) -> None:
    big = isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1
    if big and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise TemplateError(f"the result of ** would have more than {MAX_INT_BITS} bits")


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and not isinstance(right, int):
        left, right = right, left
    if not isinstance(right, int):
        return
    if isinstance(left, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateError(f"the result of * would have more than {MAX_INT_BITS} bits")
    elif isinstance(left, str | bytes):
        _need(len(left) * right)
    elif isinstance(left, list | tuple):
        _need(_size(left) * right)


@functools.cache
def _environment() -> _Sandbox:
    env = _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
        optimized=False,
        auto_reload=False,
        cache_size=0,
    )
    env.globals.clear()
    env.globals.update({name: TemplateFunction(function) for name, function in GENERATORS.items()})
    for name in DROPPED_FILTERS:
        del env.filters[name]
    env.filters.update(GUARDED_FILTERS)
    return env


# --- errors -----------------------------------------------------------------------------------


def _error(exc: BaseException) -> TemplateError:
    if isinstance(exc, TemplateError):
        return exc
    if isinstance(exc, jinja2.TemplateSyntaxError):
        message = f"{(exc.message or 'syntax error').rstrip('.')} (line {exc.lineno})"
    elif isinstance(exc, jinja2.TemplateError):
        message = exc.message or type(exc).__name__
    elif isinstance(exc, RecursionError):
        message = "the template nests or recurses too deeply"
    elif isinstance(exc, MemoryError):
        message = "the template needs too much memory"
    elif isinstance(exc, KeyError):
        key = exc.args[0] if exc.args else None
        message = f"no key {key!r}" if isinstance(key, str | int) else "no such key"
    else:
        message = str(exc) or type(exc).__name__
    message = message.rstrip(".")
    return TemplateError(message if len(message) <= 300 else message[:297] + "…")


# --- public API -------------------------------------------------------------------------------


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@functools.lru_cache(maxsize=2048)
def compile_template(text: str) -> jinja2.Template:
    if len(text) > MAX_SOURCE:
        raise TemplateError(f"the template is longer than {MAX_SOURCE} characters")
    try:
        template = _environment().from_string(text)
    except Exception as exc:
        raise _error(exc) from None
    template.globals = dict(template.globals)  # a flat dict: each render merges it, a ChainMap is slow
    return template


@functools.lru_cache(maxsize=2048)
def _analysis(text: str) -> tuple[frozenset[str], frozenset[str]]:
    compile_template(text)
    try:
        tree = _environment().parse(text)
    except Exception as exc:  # pragma: no cover - compile_template parsed it already
        raise _error(exc) from None
    names = frozenset(meta.find_undeclared_variables(tree)) - GENERATORS.keys()
    called = frozenset(call.node.name for call in tree.find_all(nodes.Call) if isinstance(call.node, nodes.Name))
    return names, called


def references(text: str) -> set[str]:
    """The variables ``text`` reads; raises :class:`TemplateError` when it does not compile."""
    return set(_analysis(text)[0])


def uses_generator(text: str, names: set[str]) -> bool:
    return not _analysis(text)[1].isdisjoint(names)


@functools.lru_cache(maxsize=2048)
def _expression(text: str) -> jinja2.Template | None:
    """For ``"{{ expr }}"`` (whitespace around allowed), a template that stores it in ``result``."""
    compile_template(text)
    env = _environment()
    body = env.parse(text).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts = [n for n in body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())]
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    tree = nodes.Template([nodes.Assign(nodes.Name("result", "store"), parts[0], lineno=1)], lineno=1)
    tree.set_environment(env)
    template = env.from_string(tree)
    template.globals = dict(template.globals)
    return template


def _plain(value: Any) -> Any:
    """The value of an expression as data: no functions, macros or other live objects."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises the undefined error
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    kind = "a function or macro" if callable(value) else f"a {type(value).__name__} object"
    raise TemplateError(f"the expression gives {kind}, not a value")


class _Session:
    """One render call's budget; nested calls share the outermost one."""

    __slots__ = ("_rng", "_token")

    def __init__(self, rng: random.Random | None) -> None:
        self._rng = rng
        self._token: Token[_Budget | None] | None = None

    def __enter__(self) -> None:
        self._token = None if _BUDGET.get() is not None else _BUDGET.set(_Budget(self._rng or _SYSTEM_RANDOM))

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _BUDGET.reset(self._token)


def render(text: str, context: Mapping[str, Any], rng: random.Random | None = None) -> str:
    """Render ``text``; ``rng`` makes ``random_port``, ``uuid`` and ``|random`` reproducible."""
    if not has_template(text):
        return text
    with _Session(rng):
        return _render_text(text, context)


def render_value(value: Any, context: Mapping[str, Any], rng: random.Random | None = None) -> Any:
    """Render every string in ``value``; ``"{{ expr }}"`` alone keeps the expression's type."""
    with _Session(rng):
        return _render_value(value, context)


def _dict(context: Mapping[str, Any]) -> dict[str, Any]:
    return context if isinstance(context, dict) else dict(context)  # jinja copies it into its own


def _render_text(text: str, context: Mapping[str, Any]) -> str:
    template = compile_template(text)
    try:
        chunks, size = [], 0
        for chunk in template.root_render_func(template.new_context(_dict(context))):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateError(f"the template renders more than {MAX_OUTPUT} characters")
            chunks.append(chunk)
        return "".join(chunks)
    except Exception as exc:
        raise _error(exc) from None


def _evaluate(template: jinja2.Template, context: Mapping[str, Any]) -> Any:
    try:
        run = template.new_context(_dict(context))
        consume(template.root_render_func(run))
        return _plain(run.vars["result"])
    except Exception as exc:
        raise _error(exc) from None


def _render_value(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if not has_template(value):
            return value
        expression = _expression(value)
        return _render_text(value, context) if expression is None else _evaluate(expression, context)
    if isinstance(value, Mapping):
        return {
            (_render_text(k, context) if isinstance(k, str) and has_template(k) else k): _render_value(v, context)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_render_value(item, context) for item in value]
    if isinstance(value, tuple):
        return tuple(_render_value(item, context) for item in value)
    return value
