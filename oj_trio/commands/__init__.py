"""The `oj` subcommands, one module per noun: `run`, `pipeline`, `workspace`, `queue`,
`worker`, `status`, `daemon`, `runbook`.

Why one room per noun: a new verb should touch only its noun's module here, its noun's handler
module (`oj_trio.handlers`) and its noun's wire shapes (`oj_trio.messages`); a new noun adds one
module on each side and one line in `oj_trio.cli`. Each noun
module exports `register(sub, add)`, which adds its parser(s) with `add` (see `_args.AddParser`:
it wires the shared `-o/--output`/`--project` options, the help formatter and the `cmd_*`
handler), and the `cmd_*` functions themselves: build a request, ask the daemon through
`Client`, print the answer. `oj_trio.cli` calls the `register`s in a fixed order, which is the
order of `oj --help`.

Everything here is stdlib-only, like the rest of the client path: `oj status` must start in a
few tens of ms, and tests/test_daemon_cli.py checks that none of these modules pulls in trio,
hcl2 or attrs. Heavier pieces (`oj runbook check`, systemd unit rendering) are imported inside
the one command that needs them. Shared helpers live in `_args` (argument parsing) and
`_output` (tables, durations, following files).
"""
