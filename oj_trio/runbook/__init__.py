"""The runbook language: load ``.oj/runbooks/**`` (HCL, TOML, JSON) into a validated model.

A pure library (no trio; the only I/O is reading files and ``bash -n`` syntax checks). Modules:

- :mod:`.model` — the frozen attrs classes (Runbook, Command, Pipeline, Step, Agent, Queue, …)
- :mod:`.loader` — load one file / a project, find entities across files, list commands
- :mod:`.argspec` — command arg specs: parse, usage, split argv, validate, map to vars
- :mod:`.templates` — ``${...}`` interpolation, shell escaping, the uniform template context
- :mod:`.names` — slugs, display names, workspace ids; :mod:`.durations` — ``"30s"`` strings
- :mod:`.help` — ``oj run`` listing and ``oj run <cmd> --help`` texts
- :mod:`.serialize` — JSON form and content hash; :mod:`.check` — ``oj runbook check``
"""

from __future__ import annotations

from .argspec import ArgSpec as ArgSpec
from .argspec import ArgSpecError as ArgSpecError
from .argspec import ArgumentError as ArgumentError
from .argspec import Flag as Flag
from .argspec import Option as Option
from .argspec import Positional as Positional
from .argspec import SplitArgs as SplitArgs
from .argspec import Variadic as Variadic
from .argspec import format_arg_spec as format_arg_spec
from .argspec import map_args as map_args
from .argspec import parse_arg_spec as parse_arg_spec
from .argspec import parse_command_args as parse_command_args
from .argspec import parse_key_value as parse_key_value
from .argspec import render_usage as render_usage
from .argspec import split_args as split_args
from .argspec import validate_args as validate_args
from .durations import parse_duration as parse_duration
from .help import format_command_help as format_command_help
from .help import format_command_listing as format_command_listing
from .loader import CommandInfo as CommandInfo
from .loader import LoadedRunbook as LoadedRunbook
from .loader import discover_runbooks as discover_runbooks
from .loader import find_command as find_command
from .loader import find_cron as find_cron
from .loader import find_pipeline as find_pipeline
from .loader import find_queue as find_queue
from .loader import find_worker as find_worker
from .loader import list_commands as list_commands
from .loader import load_project as load_project
from .loader import load_runbook as load_runbook
from .loader import load_runbook_text as load_runbook_text
from .loader import runbook_dir as runbook_dir
from .model import ActionConfig as ActionConfig
from .model import Agent as Agent
from .model import Command as Command
from .model import Cron as Cron
from .model import ErrorMatcher as ErrorMatcher
from .model import Notify as Notify
from .model import Pipeline as Pipeline
from .model import Queue as Queue
from .model import Retry as Retry
from .model import Run as Run
from .model import RunAgent as RunAgent
from .model import Runbook as Runbook
from .model import RunPipeline as RunPipeline
from .model import RunShell as RunShell
from .model import Step as Step
from .model import Transition as Transition
from .model import Worker as Worker
from .names import display_name as display_name
from .names import nonce_of as nonce_of
from .names import slugify as slugify
from .names import workspace_id as workspace_id
from .serialize import canonical_json as canonical_json
from .serialize import runbook_from_json as runbook_from_json
from .serialize import runbook_hash as runbook_hash
from .serialize import runbook_to_json as runbook_to_json
from .templates import build_context as build_context
from .templates import escape_shell as escape_shell
from .templates import interpolate as interpolate
from .templates import interpolate_shell as interpolate_shell
