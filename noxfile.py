"""Developer sessions. ``nox`` runs tests, rust and lint; ``nox -s bench`` the benchmarks;
``nox -s build`` the wheel and sdist a release publishes."""

from __future__ import annotations

import glob
import shutil

import nox

nox.options.sessions = ["tests", "rust", "lint"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
@nox.parametrize("pytest", ["9", "8"])
def tests(session: nox.Session, pytest: str) -> None:
    """The whole test suite: Rust unit tests, then the plugin's pytest suite (under the plugin),
    on pytest 9 and on pytest 8."""
    if pytest == "9":
        session.run("cargo", "test", "--quiet", external=True)
    session.install(".[test]", f"pytest=={pytest}.*")
    session.run("pytest", *session.posargs)


@nox.session
def rust(session: nox.Session) -> None:
    """Formatting and clippy, warnings as errors."""
    session.run("cargo", "fmt", "--check", external=True)
    session.run("cargo", "clippy", "--all-targets", "--", "-D", "warnings", external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy, and stubtest of the .pyi against the built module."""
    session.install("ruff", "mypy", ".[test]")
    session.run("ruff", "check", "python", "tests", "benchmarks", "examples", "scripts", "noxfile.py")
    session.run("ruff", "format", "--check", "python", "tests", "scripts", "noxfile.py")
    session.run("mypy")
    session.run(
        "python", "-m", "mypy.stubtest", "pytest_dynamo._core", "--allowlist", "stubtest-allowlist.txt"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; they write docs/benchmarks.md. Never part of the test command."""
    session.install(".[test]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """The release artifacts, checked as the release workflow builds them: the local wheel with
    ``maturin build --release`` (maturin's auditwheel check refuses a wheel that breaks the
    manylinux policy it is tagged with), the sdist, a wheel built from that sdist alone, and
    both artifacts' metadata (twine)."""
    shutil.rmtree("dist", ignore_errors=True)
    session.install("maturin>=1.16,<2", "twine")  # --auditwheel check: verified on 1.16
    session.run("maturin", "build", "--release", "--auditwheel", "check", "--out", "dist")
    session.run("maturin", "sdist", "--out", "dist")
    sdist = glob.glob("dist/*.tar.gz")
    session.run("python", "-m", "pip", "wheel", "--no-deps", "-w", session.create_tmp(), *sdist)
    session.run("twine", "check", "--strict", *glob.glob("dist/*"))
