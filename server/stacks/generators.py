"""The functions templates may call: password, secret, port, UUID and name generators.

They are the sandbox's only globals. Passwords and secrets always come from :mod:`secrets`;
``random_port``, ``uuid`` and the names draw from the render's random source, so a render given a
seeded ``random.Random`` gives the same ports, UUIDs and names each time. ``generate_animalname``
and ``generate_cosmicname`` (names such as ``postgres-brave-otter``) exist for definitions written
for the public format.
"""

from __future__ import annotations

import secrets
import string
import uuid as uuid_module
from collections.abc import Callable
from typing import Any

from server.stacks.limits import TemplateError, rng

_SYMBOLS = "-_."  # safe in URLs, shells and YAML
_PASSWORD_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, _SYMBOLS)
_ALPHANUMERIC = string.ascii_letters + string.digits
_SYSTEM_RANDOM = secrets.SystemRandom()


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
    return rng().randint(low, high)


def uuid() -> str:
    return str(uuid_module.UUID(int=rng().getrandbits(128), version=4))


_ADJECTIVES = ("brave", "calm", "eager", "gentle", "lucky", "quiet", "rapid", "sunny", "swift", "witty")
_ANIMALS = ("badger", "falcon", "heron", "lynx", "otter", "panda", "raven", "seal", "tiger", "wolf")
_COSMOS = ("comet", "galaxy", "meteor", "nebula", "nova", "orbit", "pulsar", "quasar", "star", "zenith")


def _name(kind: str, prefix: Any, words: tuple[str, ...]) -> str:
    if not isinstance(prefix, str) or len(prefix) > 40:
        raise TemplateError(f"{kind}: the prefix must be a string of at most 40 characters")
    source = rng()
    parts = [prefix] if prefix else []
    return "-".join([*parts, source.choice(_ADJECTIVES), source.choice(words)])


def generate_animalname(prefix: str = "") -> str:
    return _name("generate_animalname", prefix, _ANIMALS)


def generate_cosmicname(prefix: str = "") -> str:
    return _name("generate_cosmicname", prefix, _COSMOS)


GENERATORS: dict[str, Callable[..., str | int]] = {
    f.__name__: f
    for f in (generate_password, generate_secret, random_port, uuid, generate_animalname, generate_cosmicname)
}
