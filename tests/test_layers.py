"""The broadcaster's layers, read from the source with ``ast``: imports flow
``server -> {api, cluster} -> protocol -> shared``; the Sans-I/O core does no I/O."""

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


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved inside ``broadcaster``."""
    package = ["broadcaster", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
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
