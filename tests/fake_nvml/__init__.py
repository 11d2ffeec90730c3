"""The fake NVML of the GPU tests: ``fake_nvml.c`` compiled with the system C
compiler into a ``libnvidia-ml.so.1``, and the machine it pretends to be,
written to the file ``FAKE_NVML_CONFIG`` names (read on every NVML call)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SOURCE = Path(__file__).with_name("fake_nvml.c")

#: Library variants: the flags leave symbols out (see fake_nvml.c).
VARIANTS: dict[str, list[str]] = {
    "full": [],
    "no_init": ["-DFAKE_NVML_NO_INIT"],
    "no_count": ["-DFAKE_NVML_NO_COUNT"],
    "old": ["-DFAKE_NVML_OLD", "-DFAKE_NVML_NO_SHUTDOWN"],
}

#: Environment variables that make the fake misbehave (see fake_nvml.c):
#: a test sets them with ``monkeypatch.setenv``.
KNOBS = ("FAKE_NVML_INIT_SLEEP", "FAKE_NVML_COUNT", "FAKE_NVML_MIG_COUNT", "FAKE_NVML_PROC_COUNT")

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-40GB"
L40S = "NVIDIA L40S"


@dataclass
class Mig:
    name: str
    uuid: str
    total_mib: int


@dataclass
class Gpu:
    name: str
    uuid: str
    total_mib: int = 81559
    #: None: 80000, or all of it on a smaller GPU (more free than total is
    #: an answer no real GPU gives, and the probe refuses it).
    free_mib: int | None = None
    mig: bool = False
    instances: list[Mig] = field(default_factory=list)


def gpus(count: int, name: str = H100, total_mib: int = 81559) -> list[Gpu]:
    return [Gpu(name, f"GPU-{i:x}{i:x}{i:x}{i:x}-0000-0000-0000-{i:012x}", total_mib) for i in range(count)]


@functools.cache
def build(out: Path) -> dict[str, Path]:
    """Compile every variant once per test session (``out`` is session-unique)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("the GPU tests build a fake NVML and need a C compiler: install cc or set CC")
    libs = {}
    for variant, flags in VARIANTS.items():
        target = out / variant / "libnvidia-ml.so.1"
        target.parent.mkdir(parents=True, exist_ok=True)
        command = [cc, "-shared", "-fPIC", "-O1", "-Wall", *flags, "-o", str(target), str(SOURCE)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            pytest.fail(f"building the fake NVML failed: {' '.join(command)}\n{done.stderr}")
        libs[variant] = target
    return libs


class FakeNvml:
    """One test's fake machine."""

    def __init__(self, libs: dict[str, Path], config: Path) -> None:
        self.libs = libs
        self.config = config

    def lib(self, variant: str = "full") -> str:
        return str(self.libs[variant])

    def machine(
        self,
        devices: Sequence[Gpu] = (),
        *,
        procs: Sequence[tuple[int, int, int]] = (),
        init: int = 0,
        driver: str | None = "550.54.15",
    ) -> None:
        """Describe the machine; ``procs`` are ``(gpu index, pid, MiB)``."""
        lines = [f"init|{init}"]
        if driver:
            lines.append(f"driver|{driver}")
        for g in devices:
            free = min(80000, g.total_mib) if g.free_mib is None else g.free_mib
            lines.append(f"gpu|{g.name}|{g.uuid}|{g.total_mib}|{free}|{int(g.mig)}")
        for i, g in enumerate(devices):
            lines.extend(f"mig|{i}|{m.name}|{m.uuid}|{m.total_mib}" for m in g.instances)
        lines.extend(f"proc|{gpu}|{pid}|{mib}" for gpu, pid, mib in procs)
        write(self.config, lines)


def write(config: Path, lines: list[str]) -> None:
    """Replace the file at once: the audit thread may be reading it."""
    partial = config.with_suffix(".partial")
    partial.write_text("".join(line + "\n" for line in lines))
    os.replace(partial, config)


def prepare(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    """A fake NVML with no GPU yet; the environment cleared of GPU settings.
    Each test module wraps it in its ``fake`` fixture."""
    libs = build(tmp_path_factory.getbasetemp() / "fake_nvml_libs")
    config = tmp_path_factory.mktemp("machine") / "machine.txt"
    monkeypatch.setenv("FAKE_NVML_CONFIG", str(config))
    settings = (
        "CUDA_VISIBLE_DEVICES",
        "DYNAMO_GPUS",
        "DYNAMO_NVML_LIB",
        "DYNAMO_AUDIT",
        "DYNAMO_NVML_TIMEOUT",
    )
    for name in (*settings, *KNOBS):
        monkeypatch.delenv(name, raising=False)
    nvml = FakeNvml(libs, config)
    nvml.machine()
    return nvml
