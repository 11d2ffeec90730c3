"""The house's layout (docs/architecture.md): the Rust core is a folder per
concept with a few shared files at its top, and only `src/bindings/` uses
pyo3, so the core builds and tests without Python."""

from __future__ import annotations

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
