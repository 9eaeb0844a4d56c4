"""WindFlow's target lab: a Docker engine, SSH hosts, a VM and a Kubernetes cluster on loopback.

Used by the test suite (session fixtures in ``tests/conftest.py``) and by people and benchmarks
(``make lab-up`` / ``lab-status`` / ``lab-down``, i.e. ``python -m tests.lab``). Each target lives
in its own module with a class offering ``start()``, ``stop()`` and ``status()``.
"""
