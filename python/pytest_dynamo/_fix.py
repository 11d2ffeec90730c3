"""Writing what ``lint --fix`` and ``advise --apply`` planned: each file
through a temporary file in its own folder and a rename, so a file is either
as it was or wholly rewritten; ``--diff`` prints unified diffs instead."""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from pathlib import Path

from pytest_dynamo import _core


def diff(fix: _core.FileFix) -> str:
    """A unified diff of one file, line ends kept as they are."""
    lines = difflib.unified_diff(
        fix.original.splitlines(keepends=True),
        fix.fixed.splitlines(keepends=True),
        fromfile=f"a/{fix.path}",
        tofile=f"b/{fix.path}",
    )
    out = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
    return out


class ReadOnly(OSError):
    """A file without write permission: left alone (a rename would replace it all the same)."""


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` by `text`: a temporary file beside it, then a rename.
    A read-only file (no write permission bit, or not writable by us) is refused."""
    mode = path.stat().st_mode & 0o7777
    if not mode & 0o222 or not os.access(path, os.W_OK):
        raise ReadOnly("it is read-only")
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def finish(report: _core.FixReport, *, write_files: bool, prog: str) -> int:
    """Print or write the changes; say what was left and why. Exit status:
    0 when everything planned was done (or shown), 1 when a file could not
    be edited or written."""
    failed = 0
    files = report.files()
    for fix in files:
        if not write_files:
            sys.stdout.write(diff(fix))
            continue
        try:
            write_atomically(Path(fix.absolute), fix.fixed)
        except OSError as err:
            failed += 1
            why = err.strerror if err.strerror else str(err)
            print(f"{prog}: cannot write {fix.path}: {why}; left as it was", file=sys.stderr)
            continue
        for change in fix.changes:
            print(change)
    for line in report.left:
        print(f"{prog}: not edited: {line}", file=sys.stderr)
    for line in report.errors:
        print(f"{prog}: {line}", file=sys.stderr)
    changes = sum(len(f.changes) for f in files)
    verb = "would change" if not write_files else "changed"
    summary = (
        f"{prog}: {verb} {changes} marker(s) in {len(files) - (failed if write_files else 0)} file(s) "
        f"of {report.checked} checked; {len(report.left)} left as written"
    )
    print(summary, file=sys.stderr if not write_files else sys.stdout)
    return 1 if failed or report.errors else 0


def apply_advice(advice: _core.Advice, rootdir: Path, *, write_files: bool, prog: str) -> int:
    try:
        report = _core.advice_fix(advice, [], invocation_dir=os.getcwd(), rootdir=str(rootdir))
    except _core.ConfigError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    return finish(report, write_files=write_files, prog=prog)
