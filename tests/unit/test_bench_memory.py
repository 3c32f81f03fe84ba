"""The bench's memory figure: PSS summed over the bench process and its descendants, sampled.

A child process holding 64 MiB it wrote must show in the sum; no chain, no timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402

HELD_MIB = 64
_HOLDER = (
    "import sys\n"
    f"held = b'x' * ({HELD_MIB} * 1024 * 1024)\n"  # written, so resident and private
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def holder() -> Iterator[subprocess.Popen[str]]:
    """A child process holding HELD_MIB MiB until its stdin closes."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"  # blocks until the memory is held
        yield child
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


def test_one_process_memory_is_its_pss() -> None:
    with open("/proc/self/smaps_rollup") as rollup:
        assert any(line.startswith("Pss:") for line in rollup)
    mine = bench._process_memory_kib(os.getpid())
    assert mine > 0
    # PSS never exceeds RSS
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    assert mine <= rss + 1024  # the two reads are moments apart


def test_the_sum_counts_a_child_once(holder: subprocess.Popen[str]) -> None:
    assert holder.pid in bench._descendants(os.getpid())
    alone = bench._process_memory_kib(os.getpid()) / 1024
    child = bench._process_memory_kib(holder.pid) / 1024
    assert child >= HELD_MIB
    together = bench.tree_memory_mib()
    assert together >= alone + HELD_MIB
    # the old sum of peaks would count this process again inside the child's; this does not
    assert together < alone + child + HELD_MIB


def test_sampler_keeps_the_peak_with_a_child(holder: subprocess.Popen[str]) -> None:
    with bench.MemorySampler(interval=0.2) as sampler:
        pass  # one sample on entry, one on exit
    assert sampler.samples >= 2
    assert sampler.peak_mib >= bench._process_memory_kib(holder.pid) / 1024 + 1


def test_sampler_peak_survives_the_child_exiting() -> None:
    sampler = bench.MemorySampler(interval=0.2)
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "ready"
    with sampler:
        with_child = sampler.sample()
        child.stdin.close()
        child.wait(timeout=30)
        without_child = sampler.sample()
    assert with_child - without_child >= HELD_MIB / 2
    assert sampler.peak_mib >= with_child
