"""Playbooks: stored with every version, checked by Ansible itself, and a built-in library."""
