"""Running Ansible: the runner seam (``executor``); the run engine grows here."""
