"""The JSON form of a runbook and its content hash (for the daemon's ``runbook:loaded`` event).

The JSON form is the model unstructured by cattrs, with run directives tagged by ``type`` and
ordered maps whose order matters (``locals``) written as ``[[name, value], ...]`` so canonical
JSON (sorted keys) cannot reorder them. The file path is not part of it: the same content
anywhere hashes the same.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.strategies import configure_tagged_union

from .argspec import ArgSpec
from .model import Pipeline, Run, RunAgent, Runbook, RunPipeline, RunShell

_TAGS = {RunShell: "shell", RunAgent: "agent", RunPipeline: "pipeline"}


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    configure_tagged_union(
        Run,
        converter,
        tag_name="type",
        tag_generator=lambda cl: _TAGS[cl],  # type: ignore[index]
    )

    def locals_out(value: dict[str, str]) -> list[list[str]]:
        return [[k, v] for k, v in value.items()]

    def locals_in(value: Any, _: Any) -> dict[str, str]:
        return {str(k): str(v) for k, v in value}

    converter.register_unstructure_hook(
        Pipeline,
        make_dict_unstructure_fn(Pipeline, converter, locals=override(unstruct_hook=locals_out)),
    )
    converter.register_structure_hook(
        Pipeline,
        make_dict_structure_fn(Pipeline, converter, locals=override(struct_hook=locals_in)),
    )
    converter.register_structure_hook(ArgSpec, make_dict_structure_fn(ArgSpec, converter))
    return converter


_converter: cattrs.Converter | None = None


def converter() -> cattrs.Converter:
    """The module's converter, built on first use (no work at import time)."""
    global _converter
    if _converter is None:
        _converter = _make_converter()
    return _converter


def runbook_to_json(runbook: Runbook) -> dict[str, Any]:
    data: dict[str, Any] = converter().unstructure(runbook)
    data.pop("path", None)
    return data


def runbook_from_json(data: dict[str, Any], path: str = "") -> Runbook:
    return converter().structure({**data, "path": path}, Runbook)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def runbook_hash(runbook: Runbook) -> str:
    """SHA-256 hex of the canonical JSON form."""
    return hashlib.sha256(canonical_json(runbook_to_json(runbook)).encode("utf-8")).hexdigest()
