"""From a ``%%seeds_batch`` cell to prompts: split, fill ``{names}``, expand ``--over`` rows.

Pure functions (no shell, no I/O) so they are tested without a kernel. Filling a template is the
core's ``Template`` (the same rules as ``client.map``); every mistake a user can make in a cell becomes
a ``UsageError`` naming the prompt and the fix: IPython shows a ``UsageError`` as one clean line, where
a ``KeyError`` from ``str.format`` would show a traceback through our internals.
"""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from seeds_nb.core.exceptions import PromptError
from seeds_nb.core.template import Template
from seeds_nb.core.types import Message

__all__ = ["SEPARATOR", "Prompt", "build_prompts", "over_rows", "render", "split_prompts", "template_fields"]

SEPARATOR = "---"
"""A line holding only this separates multi-line prompts (when present, lines no longer split)."""



@dataclass(frozen=True, slots=True)
class Prompt:
    """One rendered prompt: the user text and the optional ``--system`` text."""

    text: str
    system: str | None = None

    def to_request(self) -> str | list[Message]:
        """What the batch engine takes: a plain string, or system + user messages."""
        if self.system is None:
            return self.text
        return [Message("system", self.system), Message("user", self.text)]

    @property
    def chars(self) -> int:
        return len(self.text) + len(self.system or "")


def split_prompts(cell: str) -> list[str]:
    """One prompt per non-empty line, or per ``---``-separated block when the cell has such a line.

    Blocks are dedented and stripped; empty lines and empty blocks are not prompts.
    """
    lines = cell.splitlines()
    if not any(line.strip() == SEPARATOR for line in lines):
        return [line.strip() for line in lines if line.strip()]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == SEPARATOR:
            blocks.append([])
        else:
            blocks[-1].append(line)
    prompts = (textwrap.dedent("\n".join(block)).strip() for block in blocks)
    return [p for p in prompts if p]


def template_fields(template: str, where: str = "prompt") -> list[str]:
    """The variable names a template uses (``{a}``, ``{row[x]}`` -> ``a``, ``row``), in order; the core's
    ``Template`` (shared with ``client.map``), its errors as ``UsageError``."""
    try:
        return list(Template(template, where).fields)
    except PromptError as exc:
        raise UsageError(str(exc)) from None


def render(template: str, names: Mapping[str, Any], where: str = "prompt") -> str:
    """Fill ``{name}`` fields from ``names`` (``{{``/``}}`` are literal braces), with the core's renderer.

    Unknown names are a ``UsageError`` listing all of them, never a bare ``KeyError``.
    """
    try:
        return Template(template, where).render(
            names, hint="define them in the notebook (or as a column with --over)")
    except PromptError as exc:
        raise UsageError(str(exc)) from None


def _is_frame(value: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas (it may not be installed)."""
    return hasattr(value, "columns") and hasattr(value, "to_dict") and hasattr(value, "iterrows")


def _row(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {"item": value, **{k: v for k, v in value.items() if isinstance(k, str)}}
    return {"item": value}


def over_rows(value: Any, var: str) -> list[dict[str, Any]]:
    """The names each rendering of the cell sees for ``--over var``.

    * a DataFrame: one row per line, its columns as names (``{item}`` is the row as a dict);
    * a list/iterable of dicts: their keys as names (``{item}`` is the dict);
    * a list/iterable of anything else: ``{item}``;
    * a dict: one row per key, ``{key}`` and ``{value}`` (``{item}`` is the key).
    """
    if _is_frame(value):
        rows = [_row(record) for record in value.to_dict(orient="records")]
    elif isinstance(value, Mapping):
        rows = [{"item": k, "key": k, "value": v} for k, v in value.items()]
    elif isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise UsageError(
            f"--over {var}: expected a list, a list of dicts, a dict or a pandas DataFrame; "
            f"got {type(value).__name__}"
        )
    else:
        rows = [_row(item) for item in value]
    if not rows:
        raise UsageError(f"--over {var} is empty: there is nothing to send")
    return rows


_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "_ih", "_oh", "_dh", "_i", "_ii", "_iii",
                            "_", "__", "___"})
_IPYTHON_NUMBERED = re.compile(r"_i?\d+")  # _i3 (input 3), _3 (output 3)


def check_name(name: str, option: str, *, bound: bool = True) -> None:
    """A ``--out``/``--over`` value must be a plain Python variable name.

    A name the magic binds (``bound``: ``--out`` and its ``<out>_run``/``<out>_job``) must also not be a
    dunder, a builtin or one of IPython's own names: binding ``__builtins__`` breaks the shell, and
    binding ``print`` or ``Out`` hides what the notebook relies on.
    """
    if not name.isidentifier():
        raise UsageError(f"{option} {name!r}: expected a Python variable name such as seeds_result")
    if keyword.iskeyword(name):
        problem = "that is a Python keyword, not a variable name"
    elif not bound:
        return
    elif len(name) >= 4 and name.startswith("__") and name.endswith("__"):
        problem = "names like __x__ belong to Python and IPython"
    elif name in vars(builtins):
        problem = "that is a Python builtin, and binding it would hide it in the notebook"
    elif name in _IPYTHON_NAMES or _IPYTHON_NUMBERED.fullmatch(name):
        problem = "IPython keeps its own data there (input and output history, the shell)"
    else:
        return
    raise UsageError(f"{option} {name!r}: {problem}; choose another name, such as seeds_result")


def build_prompts(cell: str, user_ns: Mapping[str, Any], *, over: str | None = None,
                  system: str | None = None) -> list[Prompt]:
    """Every prompt of the cell, rendered; with ``over``, the cell once per row (row-major)."""
    templates = split_prompts(cell)
    if not templates:
        raise UsageError(
            "the cell has no prompts: write one prompt per line below %%seeds_batch, or separate "
            "multi-line prompts with a line holding only ---"
        )
    if over is None:
        rows: list[dict[str, Any]] = [{}]
    else:
        check_name(over, "--over", bound=False)  # read, not bound
        if over not in user_ns:
            raise UsageError(f"--over {over}: no variable named {over!r} in the notebook")
        rows = over_rows(user_ns[over], over)
    prompts: list[Prompt] = []
    for i, row in enumerate(rows):
        names: Mapping[str, Any] = ChainMap(dict(row), dict(user_ns)) if row else user_ns
        where = f"row {i} of --over {over}: prompt" if over is not None else "prompt"
        system_text = render(system, names, where="--system") if system is not None else None
        for template in templates:
            prompts.append(Prompt(render(template, names, where), system_text))
    return prompts


def sink_rows(cell: str, user_ns: Mapping[str, Any], over: str,
              system: str | None) -> tuple[Any, Callable[[dict[str, Any]], Any]]:
    """``--over VAR --sink PATH``: VAR as ``client.map``'s table, and a function rendering one row's prompt
    exactly as the cell renders it (``{item}``, the row's columns, then the notebook's names).

    A sink holds one row per input row, so the cell must be one prompt. A DataFrame or a list of dicts is
    the table as it is (its columns are written beside the answers); plain items become ``{"item": x}``
    rows and a dict ``{"key": k, "value": v}`` rows.
    """
    templates = split_prompts(cell)
    if len(templates) != 1:
        raise UsageError(f"--sink writes one row per item of --over {over}, so the cell must hold one prompt; it "
                         f"holds {len(templates)} (join them into one, or drop --sink)")
    template = templates[0]
    value = user_ns[over]
    if isinstance(value, Mapping):
        table: Any = [{"key": k, "value": v} for k, v in value.items()]
    elif _is_frame(value) or all(isinstance(item, Mapping) for item in value):
        table = value
    else:
        table = [{"item": item} for item in value]
    keyed = isinstance(value, Mapping)

    def row_prompt(row: dict[str, Any]) -> Any:
        names = ChainMap({**_row(row), "item": row["key"]} if keyed else _row(row), dict(user_ns))
        text = render(template, names, f"--over {over}: prompt")
        if system is None:
            return text
        return [Message("system", render(system, names, "--system")), Message("user", text)]

    return table, row_prompt
