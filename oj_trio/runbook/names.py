"""Slugs, display names and workspace ids (reference §1.12).

Display names end up in branch names, tmux session names and workspace paths, so they are
slugified: short, lowercase, only ``[a-z0-9-]``.
"""

from __future__ import annotations

import re

SLUG_MAX = 24

#: Words that carry no meaning in a branch or directory name (the reference's exact list).
STOP_WORDS: frozenset[str] = frozenset(
    [
        "the",
        "a",
        "an",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "do",
        "does",
        "did",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "can",
        "could",
        "to",
        "of",
        "in",
        "for",
        "on",
        "with",
        "at",
        "by",
        "from",
        "as",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "between",
        "out",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "that",
        "this",
        "these",
        "those",
        "and",
        "but",
        "or",
        "nor",
        "not",
        "so",
        "yet",
        "both",
        "each",
        "every",
        "all",
        "any",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "only",
        "own",
        "same",
        "than",
        "too",
        "very",
        "just",
        "about",
        "also",
        "its",
        "it",
        "we",
        "our",
        "currently",
        "when",
        "which",
        "what",
    ]
)

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_len: int = SLUG_MAX) -> str:
    """Lowercase, runs of other characters become one ``-``, stop words dropped, at most ``max_len``.

    Non-ASCII letters count as separators ("café" → "caf"), so slugs are always safe in paths.
    """
    words = [w for w in _NON_ALNUM.split(text.lower()) if w and w not in STOP_WORDS]
    slug = "-".join(words)[:max_len]
    return slug.strip("-")


def nonce_of(pipeline_id: str) -> str:
    """The first 8 characters of a pipeline id: short, and unique enough to tell runs apart."""
    return pipeline_id[:8]


def display_name(rendered_template: str | None, pipeline_id: str, fallback: str) -> str:
    """A pipeline's display name.

    ``rendered_template`` is the pipeline's ``name`` template after interpolation (``None`` when
    the pipeline has none): its slug plus ``-<nonce>``, or just the nonce when the slug is empty.
    Without a template the caller's ``fallback`` is used verbatim: the command's ``name`` argument
    or the pipeline id (command path), ``<kind>-<item id>`` (worker path).
    """
    if rendered_template is None:
        return fallback
    nonce = nonce_of(pipeline_id)
    slug = slugify(rendered_template)
    return f"{slug}-{nonce}" if slug else nonce


def workspace_id(display: str, pipeline_id: str) -> str:
    """``ws-<name>[-<nonce>]``: the display name without a leading ``oj-``, nonce added once."""
    nonce = nonce_of(pipeline_id)
    name = display.removeprefix("oj-")
    if name.endswith(nonce):
        return f"ws-{name}"
    return f"ws-{name}-{nonce}"
