"""The checks every proposal of the assistant must pass, each one a piece of evidence.

A playbook goes through parse, modules, syntax, lint and safety; a stack through stack and
compile first, then the same stages on the playbook it compiled to. Lookups for the model while
it writes (``list_modules``, ``module_doc``, ``resolve_module``) use the same installed Ansible.
"""

from server.assistant.checks.docs import list_modules, module_doc
from server.assistant.checks.playbook import check_playbook, warm_up
from server.assistant.checks.plugins import resolve_module
from server.assistant.checks.stack import check_stack
from server.assistant.evidence import Checked, StackChecked

__all__ = [
    "Checked",
    "StackChecked",
    "check_playbook",
    "check_stack",
    "list_modules",
    "module_doc",
    "resolve_module",
    "warm_up",
]
