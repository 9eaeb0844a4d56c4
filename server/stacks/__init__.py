"""Stacks: definitions of apps to deploy, their typed variables, and the playbooks compiled from them."""
