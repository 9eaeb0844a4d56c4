"""Sandboxed Jinja for templates written by stack authors: no way out, and bounded cost.

Jinja's immutable sandbox already refuses ``_``-prefixed attributes, mutation and unsafe
callables. On top of it this module:

* offers no globals but the :mod:`~server.stacks.generators` and no loader, so
  ``{% include %}``, ``{% import %}`` and ``{% extends %}`` are rejected when the template compiles;
* drops the ``attr`` filter (``getattr`` by name) and ``urlize`` (HTML only) and swaps in the
  guarded filters of :mod:`~server.stacks.limits`;
* intercepts ``*``, ``**``, ``+``, ``%``, calls and ``str.format``, and rewrites ``~``, ``for``
  loops, macros and non-constant list/tuple/dict literals, so all of them go through the size and
  work checks of :mod:`~server.stacks.limits`;
* turns off compile-time constant folding, so filters do not run while compiling;
* caps what one template renders to ``MAX_OUTPUT`` characters (see :mod:`~server.stacks.limits`).

Every failure, including a sandbox violation, becomes a :class:`TemplateError`: one sentence that
names types, attributes and keys, never an object's repr.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import consume
from jinja2.visitor import NodeTransformer

from server.stacks import limits
from server.stacks.generators import GENERATORS, TemplateFunction
from server.stacks.limits import TemplateError as TemplateError  # the error of this module's API

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
    limits.charge(work=len(text))
    return text


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _GuardedCodeGenerator

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.check_binop(operator, left, right)
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
        args = limits.guard_call(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template: str = value.__self__
        format_map = value.__name__ == "format_map"

        def guarded(*args: Any, **kwargs: Any) -> str:
            limits.check_str_format(template, args[0] if format_map and args else (args, kwargs))
            return wrapper(*args, **kwargs)

        return guarded

    def guard_iterate(self, iterable: Any, cost: int) -> Iterator[Any]:
        for item in iterable:
            limits.charge(work=cost, steps=1)
            yield item

    def guard_charge(self, cost: int) -> str:
        limits.charge(work=cost, steps=limits.MACRO_STEPS)
        return ""

    def guard_concat(self, parts: list[Any]) -> str:
        texts = [_printable(part) for part in parts]
        limits.need(sum(len(text) for text in texts))
        return "".join(texts)

    def guard_container(self, value: Any) -> Any:
        limits.size(value)
        return value


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
    for name in limits.DROPPED_FILTERS:
        del env.filters[name]
    env.filters.update(limits.GUARDED_FILTERS)
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
    if len(text) > limits.MAX_SOURCE:
        raise TemplateError(f"the template is longer than {limits.MAX_SOURCE} characters")
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


def render(text: str, context: Mapping[str, Any], rng: random.Random | None = None) -> str:
    """Render ``text``; ``rng`` makes ``random_port``, ``uuid`` and ``|random`` reproducible."""
    if not has_template(text):
        return text
    with limits.Session(rng):
        return _render_text(text, context)


def render_value(value: Any, context: Mapping[str, Any], rng: random.Random | None = None) -> Any:
    """Render every string in ``value``; ``"{{ expr }}"`` alone keeps the expression's type."""
    with limits.Session(rng):
        return _render_value(value, context)


def _dict(context: Mapping[str, Any]) -> dict[str, Any]:
    return context if isinstance(context, dict) else dict(context)  # jinja copies it into its own


def _render_text(text: str, context: Mapping[str, Any]) -> str:
    template = compile_template(text)
    try:
        chunks, size = [], 0
        for chunk in template.root_render_func(template.new_context(_dict(context))):
            size += len(chunk)
            if size > limits.MAX_OUTPUT:
                raise TemplateError(f"the template renders more than {limits.MAX_OUTPUT} characters")
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
