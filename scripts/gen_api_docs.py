"""Generate docs/api.md from the public API's signatures and docstrings.

Run ``.venv/bin/python scripts/gen_api_docs.py`` after changing a public name;
``tests/test_docs.py`` fails when docs/api.md is out of date.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "api.md"
MODULES = ["seeds_nb", "seeds_nb.widgets", "seeds_nb.plots", "seeds_nb.ray"]
HEADER = """# API reference

Generated from the docstrings by `scripts/gen_api_docs.py`; do not edit by hand.
"""


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _doc(obj: object) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip() if obj.__doc__ else ""


def _public_methods(cls: type) -> list[tuple[str, object]]:
    """The class's own public methods, then those it inherits from the package's private bases (a
    ``VirtualList``'s ``select``, a ``Panel``'s ``on_cancel``): they are part of its API too."""
    out: list[tuple[str, object]] = []
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is not cls and not klass.__module__.startswith("seeds_nb.") or klass is object:
            continue
        if klass is not cls and not klass.__module__.rsplit(".", 1)[-1].startswith("_"):
            continue  # a public base documents itself
        for name, member in vars(klass).items():
            if name in seen or (name.startswith("_") and name not in ("__init__",)) or (
                    klass is not cls and name == "__init__"):
                continue
            seen.add(name)
            if isinstance(member, property):
                out.append((name, member))
            elif isinstance(member, classmethod) and member.__func__.__doc__:
                out.append((name, member.__get__(None, cls)))  # bound: its signature without ``cls``
            elif inspect.isfunction(member) and member.__doc__:
                out.append((name, member))
    return out


def render() -> str:
    import importlib

    parts = [HEADER]
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        parts.append(f"\n## `{module_name}`\n\n")
        if module.__doc__:
            parts.append(inspect.cleandoc(module.__doc__).split("\n\n")[0] + "\n")
        for name in sorted(getattr(module, "__all__", [])):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
                continue
            kind = "class" if inspect.isclass(obj) else "function"
            sig = _signature(obj.__init__ if inspect.isclass(obj) else obj) if kind == "function" else _signature(obj)
            parts.append(f"\n### `{name}{sig}`\n\n*{kind}*\n")
            doc = _doc(obj)
            if doc:
                parts.append("\n" + doc + "\n")
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for mname, member in _public_methods(obj):
                    if isinstance(member, property):
                        text = _doc(member)
                        parts.append(f"\n- `{mname}` (property)" + (f": {text.splitlines()[0]}" if text else ""))
                    else:
                        first = _doc(member).splitlines()[0] if _doc(member) else ""
                        parts.append(f"\n- `{mname}{_signature(member)}`" + (f": {first}" if first else ""))
                parts.append("\n")
    return "".join(parts).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        return 0 if OUT.exists() and OUT.read_text(encoding="utf-8") == text else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
