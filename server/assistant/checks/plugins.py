"""Ansible's plugin loader in this process: which modules exist, where they are, what they take.

Ansible is imported on first use, once, with its deprecation warnings silenced (the test suite
turns warnings into errors; cryptography's DSA notice is not ours to fix), with none of the
server's ``ANSIBLE_*`` variables and with an empty configuration file, so an ``ansible.cfg`` in
the working directory or the home directory cannot change which modules resolve. The loader
keeps global state and is not thread-safe: every call goes through one lock (callers run these
functions in a worker thread).
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

FREE_FORM_OPTIONS = frozenset({"free_form", "free-form", "_raw_params", "key_value"})
MAX_OPTION_TEXT = 160
# Deprecated modules are reported in the evidence; Ansible's own notices would only reach stderr.
CONFIG = "[defaults]\ndeprecation_warnings = False\n"
_lock = threading.RLock()
_docs: dict[str, dict[str, Any] | None] = {}


@dataclass(frozen=True)
class Found:
    """What the loader says about a module name: its FQCN and file, or why there is none."""

    fqcn: str | None
    path: str | None = None
    collection: str | None = None
    removed: str | None = None  # the tombstone's message for a module that was removed
    deprecated: bool = False


@functools.cache
def _ansible() -> dict[str, ModuleType]:
    """Import and initialise Ansible's loader once, isolated from the process's configuration."""
    preloaded = "ansible.constants" in sys.modules
    saved = {key: value for key, value in os.environ.items() if key.startswith("ANSIBLE_")}
    config_dir = Path(tempfile.mkdtemp(prefix="windflow-ansible-"))
    (config_dir / "ansible.cfg").write_text(CONFIG, encoding="utf-8")
    if not preloaded:
        for key in saved:
            del os.environ[key]
        os.environ["ANSIBLE_CONFIG"] = str(config_dir / "ansible.cfg")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            names = ("errors", "parsing.splitter", "plugins.loader", "utils.plugin_docs", "utils.collection_loader")
            modules = {name.rsplit(".", 1)[-1]: importlib.import_module(f"ansible.{name}") for name in names}
            modules["loader"].init_plugin_loader()
    finally:
        os.environ.pop("ANSIBLE_CONFIG", None)
        os.environ.update(saved)
        shutil.rmtree(config_dir, ignore_errors=True)
    return modules


@contextmanager
def _locked() -> Iterator[dict[str, ModuleType]]:
    with _lock:
        yield _ansible()


def find_module(name: str) -> Found:
    """Resolve ``name`` (short or FQCN) through the loader's routing, redirects included."""
    if not name or not isinstance(name, str):
        return Found(None)
    with _locked() as ansible:
        errors = ansible["errors"]
        try:
            context = ansible["loader"].module_loader.find_plugin_with_context(name)
        except errors.AnsiblePluginRemovedError as exc:
            return Found(None, removed=str(exc.message))
        except errors.AnsibleError:
            return Found(None)
        if not context.resolved:
            return Found(None)
        return Found(
            str(context.resolved_fqcn),
            str(context.plugin_resolved_path),
            str(context.plugin_resolved_collection or ""),
            deprecated=bool(context.deprecated),
        )


def resolve_module(name: str) -> str | None:
    """The FQCN of an installed module (``apt`` → ``ansible.builtin.apt``), else None."""
    return find_module(name).fqcn


def split_kv(text: str, *, check_raw: bool = False) -> dict[str, Any]:
    """Ansible's own ``k=v`` splitting (``check_raw`` keeps free text in ``_raw_params``).

    Raises ValueError for text Ansible cannot split (an unbalanced quote).
    """
    with _locked() as ansible:
        try:
            return dict(ansible["splitter"].parse_kv(text, check_raw=check_raw))
        except ansible["errors"].AnsibleError as exc:
            raise ValueError(str(exc.message)) from None


def module_doc(name: str) -> dict[str, Any] | None:
    """The documentation of a module, shortened for people and models; None when unknown."""
    found = find_module(name)
    if found.fqcn is None:
        return None
    if found.fqcn in _docs:
        return _docs[found.fqcn]
    with _locked() as ansible:
        try:
            docs = ansible["plugin_docs"].get_plugin_docs(
                found.fqcn, "module", ansible["loader"].module_loader, ansible["loader"].fragment_loader, False
            )
        except ansible["errors"].AnsibleError:
            docs = None
        raw = docs[0] if docs else None
    doc = _shorten(found.fqcn, raw) if isinstance(raw, dict) else None
    _docs[found.fqcn] = doc
    return doc


def _shorten(fqcn: str, raw: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, dict[str, Any]] = {}
    for option, spec in (raw.get("options") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        options[str(option)] = {
            "type": str(spec.get("type") or "str"),
            "required": bool(spec.get("required", False)),
            "default": plain(spec.get("default")),
            "choices": plain(spec.get("choices")),
            "aliases": [str(alias) for alias in spec.get("aliases") or []],
            "description": _first_sentence(spec.get("description")),
        }
    return {
        "name": fqcn,
        "short_description": str(raw.get("short_description") or ""),
        "description": _first_paragraph(raw.get("description")),
        "free_form": bool(FREE_FORM_OPTIONS & options.keys()),
        "options": options,
    }


def plain(value: Any) -> Any:
    """Ansible's tagged strings and containers as plain JSON types."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(item) for item in value]
    return str(value)


def _first_paragraph(text: Any) -> str:
    if isinstance(text, list):
        text = text[0] if text else ""
    return str(text or "").strip().split("\n\n")[0].replace("\n", " ")


def _first_sentence(text: Any) -> str:
    sentence = _first_paragraph(text)
    cut = sentence.find(". ")
    if cut != -1:
        sentence = sentence[: cut + 1]
    return sentence if len(sentence) <= MAX_OPTION_TEXT else sentence[: MAX_OPTION_TEXT - 1] + "…"


@functools.cache
def installed_names() -> tuple[str, ...]:
    """Every installed module's FQCN, from the files (fast; for suggesting close names)."""
    with _locked() as ansible:
        roots = [Path(path) for path in ansible["collection_loader"].AnsibleCollectionConfig.collection_paths]
        builtin = Path(str(ansible["loader"].__file__)).parents[1] / "modules"
    names = {f"ansible.builtin.{path.stem}" for path in builtin.glob("*.py")}
    for root in roots:
        for path in root.glob("ansible_collections/*/*/plugins/modules/*"):
            if path.suffix in (".py", ".ps1") and not path.stem.startswith("_"):
                namespace, collection = path.parts[-5], path.parts[-4]
                names.add(f"{namespace}.{collection}.{path.stem}")
    names.discard("ansible.builtin.__init__")
    return tuple(sorted(names))
