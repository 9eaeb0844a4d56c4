"""What one render may cost: size and work limits, the budget, and the operations that check them.

Jinja's sandbox keeps templates from reaching out; nothing in it keeps them from asking for a
gigabyte string or a billion loop iterations. This module holds the limits and the checks that
:mod:`server.stacks.sandbox` wires into its environment:

* a per-render budget of ``MAX_STEPS`` loop iterations and calls and ``MAX_WORK`` characters of
  work, kept in a context variable so nested renders share the outermost one (it also carries the
  render's random source, so a seeded render is reproducible);
* size checks that refuse any string or collection past ``MAX_LENGTH`` before it is built;
* versions of the filters and ``str``/``bytes``/``int`` methods that can multiply their input
  (``center``, ``indent``, ``join``, ``replace``, ``format``, ``batch``, ``slice``, ``wordwrap``,
  ``tojson``, ``ljust``, …) that check the size of the result first;
* checks for ``*``, ``**``, ``+`` and ``%``.

Every refusal is a :class:`TemplateError`: one sentence that names no object's repr.
"""

from __future__ import annotations

import math
import random
import re
import secrets
import string
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import filters, nodes
from jinja2.runtime import Context

MAX_SOURCE = 1024 * 1024
MAX_OUTPUT = 1024 * 1024
MAX_LENGTH = 1_000_000
MAX_INT_BITS = 1024
MAX_STEPS = 100_000
MACRO_STEPS = 10  # a macro call costs as much as ten loop iterations
MAX_WORK = 8_000_000
MAX_SLICES = 10_000
MAX_JSON_INDENT = 8

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


def charge(work: int = 0, steps: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.work -= max(work, 0)  # a negative size ("'a' * -5") must not buy credit
    budget.steps -= steps
    if budget.steps < 0:
        raise TemplateError(f"the template runs too long (more than {MAX_STEPS} loop iterations and calls)")
    if budget.work < 0:
        raise TemplateError(f"the template does too much work (more than {MAX_WORK} characters built)")


def rng() -> random.Random:
    """The render's random source: the one it was given, else the system's."""
    budget = _BUDGET.get()
    return budget.rng if budget is not None else _SYSTEM_RANDOM


class Session:
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


def need(length: Any) -> None:
    """Refuse to build a string of ``length`` characters when that is too long."""
    if not isinstance(length, int):
        return  # not a size: the operation itself will raise its TypeError
    if length > MAX_LENGTH:
        raise TemplateError(f"the result would be longer than {MAX_LENGTH} characters")
    charge(work=length)


def size(value: Any) -> int:
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
    charge(work=total)
    return total


# --- guarded filters and formatting -----------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)


def _spec_width(digits: str) -> int:
    if len(digits) > 7:
        raise TemplateError(f"a format width or precision is larger than {MAX_LENGTH}")
    return int(digits)


def check_percent(template: str, arguments: Any) -> None:
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
    need(total + fields * size(arguments))


def check_str_format(template: str, arguments: Any) -> None:
    total, fields = len(template), 0
    for _text, field, spec, _conversion in string.Formatter().parse(template):
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise TemplateError("format specs must not contain replacement fields")
        total += sum(_spec_width(digits) for digits in re.findall(r"\d+", spec or ""))
    need(total + fields * size(arguments))


def _check_replace(text: str | bytes, old: Any, new: Any, count: Any) -> None:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    need(len(text) + hits * max(0, len(new) - len(old)))


def _joined(separator: str | bytes, items: Iterator[Any]) -> list[Any]:
    """The items of ``separator.join(items)``, refusing them as soon as the result gets too long."""
    parts, total = [], -len(separator)
    for item in items:
        total += len(separator) + (len(item) if isinstance(item, str | bytes) else 0)
        if total > MAX_LENGTH:
            need(total)
        parts.append(item)
    need(max(total, 0))
    return parts


def _center(value: Any, width: int = 80) -> str:
    need(width)
    return filters.do_center(value, width)


def _indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(value)
    need(len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str) else width))
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
    check_percent(template, arguments)
    return template % arguments


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    if fill_with is not None:
        need(linecount * size(fill_with))
    return filters.do_batch(value, linecount, fill_with)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    if isinstance(slices, int) and slices > MAX_SLICES:
        raise TemplateError(f"slice makes at most {MAX_SLICES} slices")
    if fill_with is not None:
        need(slices * size(fill_with))
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
    need((len(text) + 1) * (1 + len(wrap)))  # at worst one line per character
    return filters.do_wordwrap(environment, text, width, break_long_words, wrap, break_on_hyphens)


@jinja2.pass_eval_context
def _tojson(eval_ctx: nodes.EvalContext, value: Any, indent: Any = None) -> str:
    if (len(indent) if isinstance(indent, str) else indent or 0) > MAX_JSON_INDENT:
        raise TemplateError(f"tojson indents by at most {MAX_JSON_INDENT}")
    return str(filters.do_tojson(eval_ctx, value, indent))


@jinja2.pass_context
def _random(context: Context, seq: Any) -> Any:
    try:
        return rng().choice(seq)
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


# --- guarded methods and calls ----------------------------------------------------------------

_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def _guard_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a ``str``/``bytes``/``int`` method that can build a huge result."""
    first = args[0] if args else None
    if isinstance(owner, int):
        if name == "to_bytes":
            need(kwargs.get("length", 1 if first is None else first))
        return args
    if name in _PADDING_METHODS:
        need(kwargs.get("width", first))
    elif name == "expandtabs":
        tabsize = kwargs.get("tabsize", 8 if first is None else first)
        if isinstance(tabsize, int):
            need(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * tabsize)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        args = (_joined(owner, iter(args[0])), *args[1:])
    elif name == "translate" and isinstance(owner, str):
        table = first.values() if isinstance(first, Mapping) else first if isinstance(first, list | tuple) else ()
        longest = max((len(v) for v in table if isinstance(v, str)), default=1)
        need(len(owner) * max(1, longest))
    return args


_GUARDED_METHODS = frozenset({*_PADDING_METHODS, "expandtabs", "replace", "join", "translate", "to_bytes"})


def guard_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Charge a call as one step; for a method that can build a huge result, check it first."""
    charge(steps=1)
    name = getattr(obj, "__name__", None)
    owner = getattr(obj, "__self__", None)
    if isinstance(name, str) and name in _GUARDED_METHODS and isinstance(owner, str | bytes | int):
        return _guard_method(owner, name, args, kwargs)
    return args


# --- operators --------------------------------------------------------------------------------


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` for the intercepted operators when the result is too large."""
    if operator == "**":
        _check_power(left, right)
    elif operator == "*":
        _check_product(left, right)
    elif operator == "+":
        if isinstance(left, str | bytes) and isinstance(right, str | bytes):
            need(len(left) + len(right))
        elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
            need(size(left) + size(right))
    elif operator == "%" and isinstance(left, str | bytes):
        check_percent(left if isinstance(left, str) else left.decode("latin-1"), right)


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
        need(len(left) * right)
    elif isinstance(left, list | tuple):
        need(size(left) * right)
