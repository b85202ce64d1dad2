"""The architecture, enforced: the layers of DESIGN.md, no module using another's private members, and
a small public API written out and pinned.

A static walk of the source (``ast``), so it sees imports inside functions and ``TYPE_CHECKING`` blocks
too: what a type checker or a lazy call would import is a dependency all the same.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import seeds_nb

PACKAGE = Path(seeds_nb.__file__).parent
LAYERS = ("core", "providers", "mock", "widgets", "plots", "magic", "ray")
# Which layer may import which (besides itself). The top-level package re-exports, so it may import all.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "providers": {"core"},
    "mock": set(),  # a server: nothing of the client
    "widgets": {"core"},
    "plots": {"core"},
    "magic": {"core", "providers", "widgets", "plots", "mock"},  # the outermost adapter builds clients, a mock
    "ray": {"core", "providers", "widgets"},
}
# The one allowed upward import: the lazy ``BatchResult.plot()`` accessor (as pandas' ``DataFrame.plot``).
EXCEPTIONS = {("seeds_nb.core.result", "seeds_nb.plots", "BatchResult.plot")}
UI_PACKAGES = {"ipywidgets", "anywidget", "plotly", "IPython", "traitlets", "ray", "comm"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "top"


class Imports(ast.NodeVisitor):
    """Every import of a module, with the enclosing function (``Class.method``) or '' at module level."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module, self.is_package = module, is_package
        self.scope: list[str] = []
        self.found: list[tuple[str, str, int]] = []

    def _enter(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._enter(node, node.name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._enter(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, ".".join(self.scope), node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".")
            if not self.is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        for alias in node.names:  # ``from seeds_nb import plots`` imports the submodule
            imported = f"{target}.{alias.name}" if target == "seeds_nb" and alias.name in LAYERS else target
            self.found.append((imported, ".".join(self.scope), node.lineno))


def all_imports() -> list[tuple[str, str, str, int]]:
    rows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        visitor = Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        rows += [(module, target, scope, line) for target, scope, line in visitor.found]
    return rows


def test_the_layers_of_design_md_hold() -> None:
    wrong = []
    for module, target, scope, line in all_imports():
        source = layer_of(module)
        if source == "top":
            continue
        if target.split(".")[0] in UI_PACKAGES and source in ("core", "providers", "mock"):
            wrong.append(f"{module}:{line} imports {target} (a UI/cluster package) into {source}")
        if not target.startswith("seeds_nb"):
            continue
        dest = layer_of(target)
        if dest == source or dest in ALLOWED[source] or (module, target, scope) in EXCEPTIONS:
            continue
        wrong.append(f"{module}:{line} ({scope or 'module level'}) imports {target}: {source} -> {dest}")
    assert wrong == []


def test_the_walk_sees_what_it_should() -> None:
    """The test above is only as good as its walk: it must see the one allowed exception, lazily."""
    rows = all_imports()
    assert ("seeds_nb.core.result", "seeds_nb.plots", "BatchResult.plot") in {(m, t, s) for m, t, s, _ in rows}
    assert any(m == "seeds_nb.widgets._job" and t == "seeds_nb.core.batch_api" for m, t, _, _ in rows)


def test_import_seeds_nb_loads_no_ui_package() -> None:
    code = ("import sys, seeds_nb; print(sorted(m for m in ('ipywidgets', 'plotly', 'IPython', 'traitlets', "
            "'ray', 'anywidget') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- no module uses another's private members ---------------------------------------------------------------
class Privates(ast.NodeVisitor):
    """``x._name`` accesses (not through ``self``/``cls``) and the ``_names`` a module defines itself."""

    def __init__(self) -> None:
        self.defined: set[str] = set()
        self.used: list[tuple[str, int]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.defined.add(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.defined.add(node.name)
        for item in node.body:  # slots and class-level names
            if isinstance(item, ast.Assign):
                self.defined.update(t.id for t in item.targets if isinstance(t, ast.Name))
                if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in item.targets):
                    self.defined.update(e.value for e in ast.walk(item.value) if isinstance(e, ast.Constant)
                                        and isinstance(e.value, str))
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                self.defined.add(item.target.id)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        if name.startswith("_") and not name.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                if isinstance(node.ctx, ast.Store):
                    self.defined.add(name)
            elif isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                pass  # the base class's own hook, called by its subclass
            else:
                self.used.append((name, node.lineno))
        self.generic_visit(node)


# Private names of the standard library and dependencies that are part of their documented use.
FOREIGN_OK = {
    "_asdict", "_fields", "_replace", "_make",  # namedtuple's public API
    "_repr_html_", "_repr_mimebundle_", "_repr_pretty_", "_ipython_display_",  # IPython's display protocol
    "_asyncio_runner",  # IPython's asyncio runner (seeds_nb.magic checks it exists)
    "_exit", "_getframe",
}


def test_no_module_uses_another_modules_private_members() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        visitor = Privates()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        for name, line in visitor.used:
            if name not in visitor.defined and name not in FOREIGN_OK:
                wrong.append(f"{module_name(path)}:{line} uses ._{name.lstrip('_')}")
    assert wrong == []


# -- the public API: literal and pinned -----------------------------------------------------------------------
PUBLIC = [
    "APIError", "APIStatusError", "AnthropicClient", "AuthenticationError", "BadRequestError", "BaseClient",
    "BatchCounts", "BatchExpired", "BatchJob", "BatchNotReady", "BatchResult", "BatchRun", "BatchStream",
    "BudgetExceeded", "CacheError", "CacheWarning", "CallbackWarning", "Cancelled", "Choice", "ConfigurationError",
    "GoogleClient", "Ledger", "LifetimeTracking", "Message", "MockServer", "ModelGardenClient", "NotFoundError",
    "OpenAIClient", "OpenRouterClient", "PromptError", "ProviderError", "RateLimitError", "RequestTimeout",
    "Response", "ResponseParseError", "SeedsClientError", "SeedsError", "SelfHostedClient", "ServerError",
    "TokenLogprob", "ToolCall", "Tracking", "TrackingWarning", "TransportError", "Usage", "ValidationError",
    "compare_models", "configure_logging", "export_boamps_report", "get_logger", "load_ipython_extension",
    "unload_ipython_extension",
]


def test_the_public_api_is_pinned() -> None:
    assert sorted(seeds_nb.__all__) == PUBLIC, "a change to seeds_nb.__all__ is an API decision: update PUBLIC too"
    for name in PUBLIC:
        assert getattr(seeds_nb, name) is not None


def test_dunder_all_is_written_out_literally() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    (assign,) = [n for n in tree.body if isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
    assert isinstance(assign.value, ast.List)
    assert all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in assign.value.elts)


@pytest.mark.parametrize("name", ["ResponseCache", "Tracker", "BatchStats", "mask_secret", "run_sync", "Fault",
                                  "RetryPolicy", "Pipeline"])
def test_internals_are_not_at_the_top_level(name: str) -> None:
    assert name not in seeds_nb.__all__ and not hasattr(seeds_nb, name)


def test_the_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_every_layer_is_in_the_picture() -> None:
    found = defaultdict(int)
    for path in PACKAGE.rglob("*.py"):
        found[layer_of(module_name(path))] += 1
    assert set(found) <= {*LAYERS, "top"}
