"""The house's layout (docs/architecture.md): the Rust core is a folder per
concept with a few shared files at its top, and only `src/bindings/` uses
pyo3, so the core builds and tests without Python."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]

SRC = Path(__file__).resolve().parent.parent / "src"

#: The files every concept folder shares. A new one belongs in a concept
#: folder; add it here only with a line in docs/architecture.md saying why.
TOP_LEVEL_FILES = {
    "lib.rs",
    "error.rs",
    "config.rs",
    "config_check.rs",
    "engine.rs",
    "clock.rs",
    "docs.rs",
}

#: The concept folders of docs/architecture.md.
CONCEPT_FOLDERS = {
    "taxonomy",
    "selection",
    "gpu",
    "policy",
    "records",
    "history",
    "analytics",
    "lint",
    "parallel",
    "shards",
    "bindings",
}

#: `pyo3` as Rust code names it: a path, a `use`, an attribute's crate.
PYO3 = re.compile(r"\bpyo3\b|#\[py(class|methods|function|module)\b")


def test_top_level_of_src_is_the_agreed_list() -> None:
    files = {p.name for p in SRC.iterdir() if p.is_file()}
    folders = {p.name for p in SRC.iterdir() if p.is_dir()}
    assert files - TOP_LEVEL_FILES == set(), (
        "a new top-level file in src/: put it in its concept folder "
        "(docs/architecture.md) or add it to TOP_LEVEL_FILES with a reason"
    )
    assert folders - CONCEPT_FOLDERS == set(), "a new folder in src/: add it to docs/architecture.md"
    assert files == TOP_LEVEL_FILES
    assert folders == CONCEPT_FOLDERS


def test_lib_rs_is_the_module_tree_only() -> None:
    code = [
        line.strip()
        for line in (SRC / "lib.rs").read_text().splitlines()
        if line.strip() and not line.strip().startswith("//")
    ]
    assert code, "lib.rs declares the modules"
    assert all(re.fullmatch(r"(pub )?mod \w+;", line) for line in code), code


def pyo3_users(src: Path) -> list[str]:
    users = []
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.parts[0] == "bindings":
            continue
        text = path.read_text()
        for n, line in enumerate(text.splitlines(), 1):
            # Comments may name pyo3 ("only bindings/ uses pyo3"); code may not.
            if PYO3.search(line.split("//", 1)[0]):
                users.append(f"{rel}:{n}")
    return users


def test_pyo3_only_in_bindings() -> None:
    assert pyo3_users(SRC) == [], "pyo3 outside src/bindings/: the core must not know Python"


def test_the_scan_sees_pyo3(tmp_path: Path) -> None:
    """The scan itself finds a use of pyo3 outside bindings/ (else the check
    above could never fail)."""
    fake = tmp_path / "src"
    (fake / "taxonomy").mkdir(parents=True)
    (fake / "bindings").mkdir()
    (fake / "bindings" / "mod.rs").write_text("use pyo3::prelude::*;\n")
    (fake / "taxonomy" / "mod.rs").write_text("//! no pyo3 here\n\n#[pyclass]\npub struct T;\n")
    (fake / "lib.rs").write_text("//! only bindings/ uses pyo3\nmod bindings; // not pyo3::x\n")
    (fake / "engine.rs").write_text("use pyo3::prelude::*;\n")
    assert pyo3_users(fake) == ["engine.rs:1", "taxonomy/mod.rs:3"]


PACKAGE = SRC.parent / "python" / "pytest_dynamo"


def python_imports(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in the file
    (under TYPE_CHECKING and inside functions too: a cycle there still ties
    the two files together)."""
    names = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        found: set[str] = set()
        for node in ast.walk(tree):
            module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            if module == "pytest_dynamo":
                found |= {a.name for a in node.names}
            elif module.startswith("pytest_dynamo."):
                found.add(module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pytest_dynamo.")}
        graph[path.stem] = (found & names) - {path.stem}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle once, as the modules on it (strongly connected
    components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


#: Python cycles still to untie, brought by the GPU-parallel and budgets
#: branches as they merged. The list may only shrink.
KNOWN_PYTHON_CYCLES: list[list[str]] = []


def test_no_import_cycles_in_the_python_package() -> None:
    assert cycles(python_imports(PACKAGE)) == KNOWN_PYTHON_CYCLES


def test_the_cycle_scan_finds_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "_a.py").write_text("from pytest_dynamo import _b\n")
    (tmp_path / "_b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pytest_dynamo._a import A\n"
    )
    (tmp_path / "_c.py").write_text("import pytest_dynamo._a\n")
    assert cycles(python_imports(tmp_path)) == [["_a", "_b"]]


def rust_modules(src: Path) -> dict[str, Path]:
    """Module path (``history::read``) -> its file."""
    modules = {}
    for path in src.rglob("*.rs"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "mod":
            parts.pop()
        if parts != ["lib"]:
            modules["::".join(parts)] = path
    return modules


def rust_uses(src: Path) -> dict[str, set[str]]:
    """Module -> the modules its code (tests left out) names through ``crate::``."""
    modules = rust_modules(src)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        code = path.read_text().split("#[cfg(test)]", 1)[0]
        named = set()
        for base, group in re.findall(r"crate::((?:\w+::)*)\{([^}]*)\}", code):
            named |= {base + item.strip().split(" as ")[0] for item in group.split(",") if item.strip()}
        named |= set(re.findall(r"crate::((?:\w+::)*\w+)", code))
        found = set()
        for name in named:
            segments = name.replace("::self", "").split("::")
            # The longest prefix that is a module is the one used.
            for k in range(len(segments), 0, -1):
                if "::".join(segments[:k]) in modules:
                    found.add("::".join(segments[:k]))
                    break
        graph[module] = found - {module}
    return graph


#: Cycles between Rust files still to untie (issue #15). The list may only
#: shrink: a new cycle fails the test below.
KNOWN_RUST_CYCLES: list[list[str]] = []


def test_no_new_import_cycles_between_rust_files() -> None:
    assert cycles(rust_uses(SRC)) == KNOWN_RUST_CYCLES


def test_the_rust_cycle_scan_finds_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "lib.rs").write_text("mod a;\nmod b;\n")
    (tmp_path / "a" / "mod.rs").write_text("pub mod x;\nuse crate::b::{self, Thing};\n")
    (tmp_path / "a" / "x.rs").write_text("pub fn f() {}\n")
    (tmp_path / "b.rs").write_text(
        "pub fn g() { crate::a::f() }\n#[cfg(test)]\nmod tests { use crate::c; }\n"
    )
    (tmp_path / "c.rs").write_text("use crate::b;\nuse crate::a::x::f;\n")
    assert cycles(rust_uses(tmp_path)) == [["a", "b"]]
