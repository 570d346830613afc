"""oj: a job and pipeline daemon driven by runbooks.

The package is split so that the CLI (`oj_trio.cli`) imports only the standard library:
heavy modules (trio, hcl2, attrs, cattrs) are loaded by the daemon or lazily by the one
CLI command that needs them (`oj runbook check`).
"""

from ._version import __version__ as __version__
