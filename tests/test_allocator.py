"""rftcost.allocator: jemalloc as Arrow's default pool, chosen before pyarrow loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_BUILT_WITH_JEMALLOC = (
    "import pyarrow as pa\n"
    "try:\n"
    "    pa.jemalloc_memory_pool()\n"
    "    print(True)\n"
    "except NotImplementedError:\n"
    "    print(False)\n"
)


def _run(code: str) -> list[str]:
    mine = ("ARROW_DEFAULT_MEMORY_POOL", "JE_ARROW_MALLOC_CONF", "NUMPY_MADVISE_HUGEPAGE")
    env = {k: v for k, v in os.environ.items() if k not in mine}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert done.stderr == ""  # no warning from Arrow about an unknown pool
    return done.stdout.split()


@pytest.mark.parametrize("pyarrow_first", [False, True])
def test_jemalloc_is_the_default_pool_whether_pyarrow_was_imported_or_not(
    pyarrow_first: bool,
) -> None:
    (built,) = _run(_BUILT_WITH_JEMALLOC)
    code = (
        "import sys\n"
        + ("import pyarrow\n" if pyarrow_first else "")
        + "from rftcost.allocator import prefer_jemalloc\n"
        "chosen = prefer_jemalloc()\n"
        "loaded = 'pyarrow' in sys.modules\n"
        "import pyarrow as pa\n"
        "print(chosen, loaded, pa.default_memory_pool().backend_name)\n"
    )
    chosen, loaded, backend = _run(code)
    assert chosen == built
    assert loaded == str(pyarrow_first)  # not imported only to choose its pool
    if built == "True":
        assert backend == "jemalloc"


@pytest.mark.parametrize("pyarrow_first", [False, True])
def test_freed_pages_go_back_soon_in_this_process_and_its_workers(pyarrow_first: bool) -> None:
    (built,) = _run(_BUILT_WITH_JEMALLOC)
    if built != "True":
        pytest.skip("this pyarrow has no jemalloc")
    code = (
        "import os\n"
        + ("import pyarrow\n" if pyarrow_first else "")
        + "from rftcost.allocator import prefer_jemalloc\n"
        "prefer_jemalloc()\n"
        "print(os.environ['JE_ARROW_MALLOC_CONF'])\n"
    )
    assert _run(code) == ["dirty_decay_ms:100,muzzy_decay_ms:100"]
    # A setting of the user's own stands.
    mine = "import os\nos.environ['JE_ARROW_MALLOC_CONF'] = 'dirty_decay_ms:5'\n" + code
    assert _run(mine) == ["dirty_decay_ms:5"]


_HUGE_PAGES = (
    "from rftcost.allocator import prefer_small_pages\n"
    "said = prefer_small_pages()\n"
    "import numpy._core.multiarray as multiarray\n"
    "print(said, multiarray._get_madvise_hugepage())\n"
)


def test_numpy_asks_for_no_huge_pages_unless_the_user_says() -> None:
    """The command line's arrays are not placed in huge pages (allocator: the kernel's
    compaction made a bill of 1.6M events 0.1-0.2 s slower); a setting of the user's own,
    or numpy imported before, is left as it is."""
    assert _run(_HUGE_PAGES) == ["True", "False"]
    mine = "import os\nos.environ['NUMPY_MADVISE_HUGEPAGE'] = '1'\n" + _HUGE_PAGES
    assert _run(mine) == ["False", "True"]
    imported = "import numpy\n" + _HUGE_PAGES
    said, _ = _run(imported)
    assert said == "False"  # too late to say: numpy's own choice is kept


def test_the_command_line_sets_it_for_itself_and_its_workers() -> None:
    code = (
        "import os, sys\n"
        "sys.argv = ['rftcost', 'policy', 'show']\n"
        "from rftcost.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(os.environ['NUMPY_MADVISE_HUGEPAGE'])\n"
    )
    assert _run(code)[-1] == "0"


def test_a_command_keeps_freed_memory_for_reuse_but_watch_does_not() -> None:
    """glibc's large freed blocks go back to the system at once, and the next array faults
    every page in again (allocator): a command's process keeps them; watch, which runs
    for days, does not ask."""
    code = (
        "import sys\n"
        "import rftcost.allocator as allocator\n"
        "asked = []\n"
        "allocator.keep_freed_memory = lambda: asked.append(True) or True\n"
        "from rftcost.cli import main\n"
        "for command in (['policy', 'show'], ['watch', '--help']):\n"
        "    sys.argv = ['rftcost', *command]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    print('asked', len(asked))\n"
    )
    said = _run(code)
    assert [said[i + 1] for i, word in enumerate(said) if word == "asked"] == ["1", "1"]
    if sys.platform.startswith("linux"):
        assert _run("from rftcost.allocator import keep_freed_memory\nprint(keep_freed_memory())")[
            -1
        ] in ("True", "False")  # False only under another C library
