"""The control plane: store, plans, billing, blueprint, builds, jobs and logs.

The faces (``renderlocal.cli``, ``renderlocal.api``, ``renderlocal.tui``) only
call into this package; they never hold logic of their own about jobs.
"""
