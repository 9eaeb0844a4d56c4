"""WindFlow: an Ansible-backed automation server."""

__version__ = "0.1.0"
