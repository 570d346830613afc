"""Adapters: the daemon's edges to the operating system.

Each submodule wraps one outside thing the runtime drives — shell steps in their own process
groups (:mod:`oj_trio.adapters.process`), short captured bash snippets such as a local's
``$(…)`` (:mod:`oj_trio.adapters.bash_eval`), desktop notifications
(:mod:`oj_trio.adapters.notify`), workspace directories (:mod:`oj_trio.adapters.workspace`),
tmux sessions (:mod:`oj_trio.adapters.tmux`) and, later, agents — so the runtime talks in steps
and pipelines, never in pids and argv. Importing this package does nothing; import the
submodule you need.
"""
