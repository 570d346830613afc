"""The run-time schema of requests and queries, derived from their shapes (daemon side).

:func:`oj_trio.protocol.parse_request` checks every decoded request against
:func:`request_schemas` (and a ``Query``'s payload against :func:`query_schemas`). The tables
are compiled from the shapes' unevaluated string annotations (see :mod:`oj_trio.messages`), once,
on first use: importing this module builds nothing.
"""

from __future__ import annotations

from functools import cache

from . import QUERIES, REQUESTS

#: ``{field: (python type, required)}``, what ``protocol._check_fields`` checks a message against.
Schema = dict[str, tuple[type, bool]]

#: The annotation spellings request and query fields may use, and the run-time type each checks.
_FIELD_TYPES: dict[str, type] = {
    "str": str,
    "bool": bool,
    "int": int,
    "object": object,
    "Query": dict,
}
#: Generic containers, matched by their head: ``list[str]`` is checked as a list (elements are not).
_CONTAINERS: dict[str, type] = {"list": list, "dict": dict}


def _annotations(shape: type) -> dict[str, str]:
    """A shape's field annotations as source text, bases first (a shape may extend another)."""
    import inspect  # daemon side only, where it is imported anyway; the CLI never gets here

    fields: dict[str, str] = {}
    for klass in reversed(shape.__mro__):
        for name, annotation in inspect.get_annotations(klass).items():
            # a string under `from __future__ import annotations`; a ForwardRef should the class
            # ever be a real TypedDict; the text is what counts.
            fields[name] = str(getattr(annotation, "__forward_arg__", annotation))
    return fields


def _unwrap(annotation: str, wrapper: str) -> str | None:
    prefix = wrapper + "["
    if annotation.startswith(prefix) and annotation.endswith("]"):
        return annotation[len(prefix) : -1].strip()
    return None


def tag_of(shape: type) -> str:
    """The wire tag of a shape: the string in its ``type: Literal["<Tag>"]`` annotation.

    Raises:
        TypeError: the shape has no such annotation.
    """
    literal = _unwrap(_annotations(shape).get("type", ""), "Literal")
    if literal is None or len(literal) < 2 or literal[0] not in "'\"" or literal[-1] != literal[0]:
        raise TypeError(f"{shape.__name__}: 'type' must be annotated Literal[\"<Tag>\"]")
    return literal[1:-1]


def _compile(shape: type) -> tuple[str, Schema]:
    """A request or query shape's tag and field schema.

    Raises:
        TypeError: the shape uses an annotation outside :data:`_FIELD_TYPES` or has no
            ``Literal`` tag: a programming error, caught by the protocol unit tests.
    """
    schema: Schema = {}
    for name, annotation in _annotations(shape).items():
        if name == "type":
            continue
        inner = _unwrap(annotation, "NotRequired")
        head, generic, _ = (annotation if inner is None else inner).partition("[")
        ftype = _CONTAINERS.get(head) if generic else _FIELD_TYPES.get(head)
        if ftype is None:
            raise TypeError(f"{shape.__name__}.{name}: unsupported field annotation {annotation!r}")
        schema[name] = (ftype, inner is None)
    return tag_of(shape), schema


@cache
def _schemas(shapes: tuple[type, ...]) -> dict[str, Schema]:
    """tag -> schema for a table of shapes, built once, on first use (the daemon side)."""
    table: dict[str, Schema] = {}
    for shape in shapes:
        tag, schema = _compile(shape)
        if tag in table:
            raise TypeError(f"two shapes are tagged {tag!r}")
        table[tag] = schema
    return table


def request_schemas() -> dict[str, Schema]:
    """tag -> field schema of every request in :data:`~oj_trio.messages.REQUESTS`."""
    return _schemas(REQUESTS)


def query_schemas() -> dict[str, Schema]:
    """tag -> field schema of every query in :data:`~oj_trio.messages.QUERIES`."""
    return _schemas(QUERIES)
