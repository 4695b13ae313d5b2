"""The import structure of the service is the one the README describes, and names are unique.

Read from the source with ``ast`` (every import, lazy and TYPE_CHECKING ones included),
the way ``test_every_route_is_limited_or_exempt`` guards the routes: a new edge that the
layering does not allow fails here, with the file and line.

    quart_app -> blueprints -> gateway -> agent -> providers -> coordination
                                  \\-> credits <-/ (models, pricing)
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("quart_app", "blueprints", "gateway", "agent", "providers", "credits", "coordination")
OURS = (*PACKAGES, "internals", "testing", "bench", "tests")

#: What each package may import besides itself (a module or a whole package).
ALLOWED: dict[str, tuple[str, ...]] = {
    "coordination": ("internals",),
    "credits": ("internals",),
    "providers": ("coordination", "credits.models", "credits.pricing", "internals"),
    "agent": ("providers", "coordination.errors", "internals"),
    "gateway": ("agent", "providers", "credits", "coordination", "internals"),
    "blueprints": ("quart_app.facade", "gateway", "agent", "providers"),
    "quart_app": (
        "gateway",
        "agent",
        "providers",
        "credits",
        "coordination",
        "internals",
        "blueprints",
    ),
}
#: Below the transports nothing knows the web framework.
FRAMEWORK = ("quart", "werkzeug", "hypercorn")
FRAMEWORK_FREE = ("gateway", "agent", "providers", "credits", "coordination")
#: The one module of quart_app that imports blueprints (registration, inside a function).
BLUEPRINT_REGISTRY = "quart_app/routes.py"


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _matches(module: str, allowed: str) -> bool:
    return module == allowed or module.startswith(allowed + ".")


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_import_follows_the_layering() -> None:
    wrong: list[str] = []
    for package in PACKAGES:
        for path in _sources(package):
            where = path.relative_to(ROOT).as_posix()
            for line, module in _imports(path):
                top = module.split(".")[0]
                if top == package or top not in OURS:
                    continue
                if package == "quart_app" and top == "blueprints" and where != BLUEPRINT_REGISTRY:
                    wrong.append(f"{where}:{line} imports {module} (only {BLUEPRINT_REGISTRY} may)")
                elif not any(_matches(module, allowed) for allowed in ALLOWED[package]):
                    wrong.append(f"{where}:{line}: {package} may not import {module}")
    assert wrong == [], "\n".join(wrong)


def test_only_the_transports_know_the_web_framework() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for package in FRAMEWORK_FREE
        for path in _sources(package)
        for line, module in _imports(path)
        if module.split(".")[0] in FRAMEWORK
    ]
    assert wrong == [], "\n".join(wrong)


def test_the_check_sees_a_forbidden_edge(tmp_path: Path) -> None:
    # The parser finds lazy imports too: a guard that cannot fail guards nothing.
    source = tmp_path / "module.py"
    source.write_text("def f() -> None:\n    from quart_app.wiring import build_services\n")
    assert _imports(source) == [(2, "quart_app.wiring")]
    assert not any(_matches("quart_app.wiring", a) for a in ALLOWED["blueprints"])
    assert any(_matches("quart_app.facade", a) for a in ALLOWED["blueprints"])


def test_no_two_classes_share_a_name() -> None:
    homes: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in _sources(package):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    homes[node.name].append(path.relative_to(ROOT).as_posix())
    twins = {name: where for name, where in homes.items() if len(where) > 1}
    assert twins == {}
