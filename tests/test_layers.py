"""The layers, read from the source with ``ast``. The broadcaster's imports flow
``server -> {api, cluster} -> protocol -> shared`` and its Sans-I/O core does no I/O; the
webapp's flow ``web -> broadcasting -> accounts -> orders`` and its domain speaks no HTTP."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "broadcaster"
IO_LIBRARIES = {"asyncio", "redis", "httptools", "prometheus_client", "socket", "uvloop"}
# subpackage -> the broadcaster subpackages it must never import
FORBIDDEN = {
    "protocol": {"api", "cluster", "server", "webhooks"},
    "api": {"cluster", "server", "webhooks"},
    "cluster": {"api", "server", "webhooks"},
    "webhooks": {"api", "cluster", "server", "metrics"},
}


def imports_of(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports, relative imports resolved inside the package ``root``
    (``from . import x`` names the module ``x``)."""
    package = [root.name, *path.relative_to(root).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            if node.module:
                found.add(".".join([*base, *node.module.split(".")]))
            else:
                found.update(".".join([*base, alias.name]) for alias in node.names)
    return found


def modules(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).rglob("*.py"))


@pytest.mark.parametrize("subpackage", ["protocol", "api"])
def test_the_sans_io_core_imports_no_io_library(subpackage):
    for path in modules(subpackage):
        roots = {name.split(".")[0] for name in imports_of(path)}
        assert not roots & IO_LIBRARIES, f"{path.name} imports {roots & IO_LIBRARIES}"


@pytest.mark.parametrize("subpackage", sorted(FORBIDDEN))
def test_imports_flow_one_way(subpackage):
    assert modules(subpackage), f"broadcaster/{subpackage} is empty"
    for path in modules(subpackage):
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "broadcaster" and len(parts) > 1:
                assert parts[1] not in FORBIDDEN[subpackage], f"{path.name} imports {name}"


# The webapp's parts (STYLE.md 2.6): imports flow web -> broadcasting -> accounts -> orders.
WEBAPP = PACKAGE.parent / "webapp"
WEBAPP_PARTS = ("orders", "accounts", "broadcasting", "web")
# part -> the webapp parts it must never import
WEBAPP_FORBIDDEN = {
    "orders": {"accounts", "broadcasting", "web"},
    "accounts": {"broadcasting", "web"},
    "broadcasting": {"web"},
    "web": set(),
}
# The domain answers no request and speaks no HTTP: these stay out of webapp/orders.
HTTP_LIBRARIES = {"flask", "werkzeug", "http", "urllib", "flask_wtf", "flask_limiter"}
# Top-level modules every part may import; they import no part (create_app and seed wire them).
WEBAPP_SHARED = ("config.py", "extensions.py", "schema.py", "bodies.py")


def webapp_parts_imported(path: Path) -> set[str]:
    """The webapp parts ``path`` imports; ``"webapp"`` when it imports the package itself
    (``create_app``)."""
    parts = set()
    for name in imports_of(path, WEBAPP):
        pieces = name.split(".")
        if pieces == ["webapp"]:
            parts.add("webapp")
        elif pieces[0] == "webapp" and pieces[1] in WEBAPP_PARTS:
            parts.add(pieces[1])
    return parts


@pytest.mark.parametrize("part", WEBAPP_PARTS)
def test_webapp_parts_import_one_way(part):
    paths = sorted((WEBAPP / part).rglob("*.py"))
    assert len(paths) > 1, f"webapp/{part} is empty"
    for path in paths:
        wrong = webapp_parts_imported(path) & (WEBAPP_FORBIDDEN[part] | {"webapp"})
        assert not wrong, f"webapp/{part}/{path.name} imports {wrong}"


def test_the_webapp_domain_speaks_no_http():
    for path in sorted((WEBAPP / "orders").rglob("*.py")):
        roots = {name.split(".")[0] for name in imports_of(path, WEBAPP)}
        assert not roots & HTTP_LIBRARIES, f"orders/{path.name} imports {roots & HTTP_LIBRARIES}"


@pytest.mark.parametrize("name", WEBAPP_SHARED)
def test_webapp_shared_modules_import_no_part(name):
    assert not webapp_parts_imported(WEBAPP / name), f"webapp/{name} imports a part"


def test_every_webapp_module_is_in_a_part_or_named_at_the_top():
    top = {path.name for path in WEBAPP.glob("*.py")}
    assert top == {"__init__.py", "seed.py", *WEBAPP_SHARED}, "a module at webapp/'s top"
