"""glibc's allocator settings: applied, and memory behaves as each command needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Prints whether the setting named by argv[2] was applied ("None" when argv[1] is not
# "tuned"), then runs the body.
_PRELUDE = """
import sys
if sys.argv[1] == "tuned":
    import pipeline.runtime.allocator
    print(getattr(pipeline.runtime.allocator, sys.argv[2])())
else:
    print(None)
"""

# Buffers of 100 KB to 1 MB, a few alive at a time: the ingress's bodies, events and
# record batches. Prints the page faults it took after a warm-up.
_CHURN = """
import resource
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
live = []
for i in range(50):
    live.append(bytes(200_000 + i))
    if len(live) > 8:
        live.clear()
before = faults()
for i in range(1000):
    live.append(b"x" * (100_000 + (i * 7919) % 900_000))
    if len(live) > 8:
        live.clear()
print(faults() - before)
"""

# The loader's pattern: batches of large blocks, each freed while smaller objects made after
# it live on. Prints the resident MB given back once the large blocks are freed.
_BATCHES = """
def resident_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) // 1024
first = bytearray(8 << 20)  # mapped by either setting; freeing it raises glibc's own threshold
del first
large, small = [], []
for i in range(40):
    large.append(bytearray(2 << 20))  # touched: zero-filled
    small.append(bytearray(512))
before = resident_mb()
large.clear()
print(before - resident_mb())
"""


def _run(body: str, setting: str, mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PRELUDE + body, mode, setting],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout.split()
    return out[0], int(out[1])


def test_freed_buffers_are_reused_without_page_faults() -> None:
    applied, tuned = _run(_CHURN, "keep_freed_memory", "tuned")
    _, default = _run(_CHURN, "keep_freed_memory", "default")
    assert applied == "True"  # this machine's C library is glibc
    # ~250 pages a MB: the defaults fault every buffer in anew, the settings almost none
    assert default > 50_000
    assert tuned * 20 < default


def test_an_operators_glibc_tunables_win() -> None:
    tunables = {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}
    for setting in ("keep_freed_memory", "map_large_blocks"):
        applied, _ = _run(_CHURN, setting, "tuned", tunables)
        assert applied == "False"


def test_the_loaders_large_blocks_are_given_back_when_freed() -> None:
    applied, tuned = _run(_BATCHES, "map_large_blocks", "tuned")
    _, default = _run(_BATCHES, "map_large_blocks", "default")
    assert applied == "True"
    # 80 MB of 2 MiB blocks: with glibc's moving threshold they came from the heap, between
    # small blocks that pin it, and stay resident; with the fixed one they are unmapped
    assert default < 20
    assert tuned > 70


# Prints the Arrow pool's backend before and after, and whether the setting was applied.
_ARROW = """
import pyarrow
import pipeline.runtime.allocator
before = pyarrow.default_memory_pool().backend_name
applied = pipeline.runtime.allocator.arrow_from_malloc()
column = pyarrow.array(["x" * 1000] * 2000)  # allocated from the pool now in use
print(before, applied, pyarrow.default_memory_pool().backend_name, column.nbytes > 0)
"""


def _arrow(env: dict[str, str]) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    return subprocess.run(
        [sys.executable, "-c", _ARROW],
        capture_output=True,
        text=True,
        check=True,
        env={**environ, **env},
    ).stdout.split()


def test_the_loaders_arrow_columns_come_from_malloc() -> None:
    before, applied, after, built = _arrow({})
    assert before != "system"  # pyarrow's wheels default to a bundled allocator
    assert (applied, after, built) == ("True", "system", "True")


def test_an_operators_arrow_pool_wins() -> None:
    before, applied, after, _ = _arrow({"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"})
    assert (applied, after) == ("False", before)


# As ``load`` does it: chosen before pyarrow is imported, so that Arrow's C++ default pool
# (the one every path without a pool of its own takes) is malloc's from its first use.
_ARROW_FIRST = """
import sys
import pipeline.runtime.allocator
assert "pyarrow" not in sys.modules
applied = pipeline.runtime.allocator.arrow_from_malloc()
import pyarrow, pyarrow.dataset, pyarrow.parquet
pyarrow.parquet.write_table(pyarrow.table({"a": ["x" * 100] * 20_000}), sys.argv[1])
read = pyarrow.dataset.dataset(sys.argv[1]).to_table()
print(applied, pyarrow.default_memory_pool().backend_name,
      pyarrow.mimalloc_memory_pool().bytes_allocated(), read.num_rows)
"""


def test_chosen_before_import_every_arrow_buffer_comes_from_malloc(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run(
        [sys.executable, "-c", _ARROW_FIRST, str(tmp_path / "t.parquet")],
        capture_output=True,
        text=True,
        check=True,
        env=environ,
    ).stdout.split()
    assert out == ["True", "system", "0", "20000"]


# ``load`` up to the loader itself, which is replaced by one reporting what it found.
_LOAD = """
import os, sys
from pipeline.cli import build_parser
from pipeline.warehouse import command
async def loader(*args, **kwargs):
    print(os.environ.get("ARROW_DEFAULT_MEMORY_POOL"), "pyarrow" in sys.modules)
    return 0
command.load = loader
sys.exit(command.run(build_parser().parse_args(["load", "--to", sys.argv[1]])))
"""


def test_load_chooses_arrows_pool_before_pyarrow_is_imported(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    environ["PLUG_PIPELINE_PRIVACY_POLICY"] = "keep"

    def found(target: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", _LOAD, target],
            capture_output=True,
            text=True,
            check=True,
            env=environ,
        ).stdout.strip()

    assert found(str(tmp_path / "w.duckdb")) == "system False"
    assert found(f"iceberg+sqlite:///{tmp_path}/catalog.db") == "system False"
    assert found("postgresql://nobody@127.0.0.1:1/none") == "None False"  # no Arrow there
