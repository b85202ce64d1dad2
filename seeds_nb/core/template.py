"""Prompt templates: ``"Summarise {abstract} in one line"`` filled from a row, a notebook namespace, or a dict.

One renderer for ``client.map`` and the ``%%seeds_batch`` magic, so both accept the same fields
(``{name}``, ``{row[key]}``, ``{obj.attr}``, format specs such as ``{score:.2f}``; ``{{``/``}}`` for
literal braces) and fail with the same one-line ``PromptError`` naming the template and the fix, never
a ``KeyError`` from ``str.format``. A template is parsed once, then filled per row with the C
``str.format_map`` (a 100k-row map pays the parsing once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from string import Formatter
from typing import Any

from .exceptions import PromptError

__all__ = ["Template", "excerpt"]

_FORMATTER = Formatter()
_HEAD = re.compile(r"[^.\[!:]*")  # the variable part of a field: `row` in `{row[name]}` / `{row.x}` / `{x:.2f}`
_EXCERPT = 60


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    """One line of at most ``limit`` characters, to name a template in a message."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


class Template:
    """A parsed template. ``fields``: the variable names it uses, in order (``{a}``, ``{row[x]}`` ->
    ``a``, ``row``). Raises ``PromptError`` for a template ``str.format`` cannot parse (a lone brace) or a
    positional field (``{}``, ``{0}``): both are almost always a brace meant literally."""

    __slots__ = ("fields", "text", "where")

    def __init__(self, text: str, where: str = "prompt") -> None:
        if not isinstance(text, str):
            raise PromptError(f"{where} must be a template string such as 'Summarise {{abstract}}'; "
                              f"got {type(text).__name__}")
        self.text = text
        self.where = where
        names: list[str] = []
        try:
            parsed = list(_FORMATTER.parse(text))
        except ValueError as exc:
            raise PromptError(f"{where} {excerpt(text)!r}: {exc} - write {{{{ and }}}} for literal braces") from None
        for _, field, _, _ in parsed:
            if field is None:
                continue
            match = _HEAD.match(field)
            head = match.group(0) if match else ""
            if not head or head.isdigit():
                raise PromptError(f"{where} {excerpt(text)!r}: {{{field}}} is not a variable name - use a name "
                                  "such as {topic}, or write {{ and }} for literal braces")
            if head not in names:
                names.append(head)
        self.fields = tuple(names)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def missing(self, names: Iterable[str]) -> list[str]:
        """The fields not among ``names`` (to check a table's columns before anything is sent)."""
        known = set(names)
        return [field for field in self.fields if field not in known]

    def render(self, names: Mapping[str, Any], *, where: str | None = None, hint: str = "") -> str:
        """The template filled from ``names``. A missing name is a ``PromptError`` listing every missing
        one, followed by ``hint`` (what the caller can do: "the data's columns are ...")."""
        if not self.fields:
            return self.text.format_map({})  # still turns {{ }} into { }
        try:
            return self.text.format_map(names)
        except KeyError:
            missing = [field for field in self.fields if field not in names]
            if missing:
                listed = ", ".join(f"{{{name}}}" for name in missing)
                plural = "s" if len(missing) > 1 else ""
                raise PromptError(f"{where or self.where} {excerpt(self.text)!r}: unknown name{plural} {listed}"
                                  f"{' - ' + hint if hint else ''}; write {{{{ and }}}} for literal braces") from None
            detail = "a key inside a field is missing"
        except (IndexError, AttributeError, ValueError, TypeError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
        raise PromptError(f"{where or self.where} {excerpt(self.text)!r}: cannot fill it ({detail})")
