"""TensorFlow's native start-up lines are kept off the command line's stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from embvar.native_logs import keep_line

NOTICE = (
    "WARNING: All log messages before absl::InitializeLog() is called are "
    "written to STDERR\n"
)
INFO = "I0000 00:00:1796358769.398071   13920 port.cc:153] oneDNN custom ops on\n"
WARN = "W1203 10:04:05.123456   77 cuda.cc:12] no GPU\n"
ERROR = "E1203 10:04:05.123456   77 io.cc:9] cannot open\n"


@pytest.mark.parametrize(
    "line, level, kept",
    [
        (NOTICE, 0, True),
        (NOTICE, 1, False),
        (INFO, 0, True),
        (INFO, 1, False),
        (WARN, 1, True),
        (WARN, 2, False),
        (ERROR, 2, True),
        (ERROR, 3, False),
        ("/x/y.py:3: UserWarning: careful\n", 3, True),
        ("embvar: error: bad value\n", 2, True),
    ],
)
def test_keep_line_follows_the_level(line, level, kept):
    assert keep_line(line, level) is kept


def _run(code: str, level: str = "2", **streams) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python; stdout and stderr captured unless given."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": level}
    options = {
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        **streams,
    }
    return subprocess.run([sys.executable, "-c", code], env=env, timeout=120, **options)


def test_filtered_block_drops_native_lines_and_restores_stderr():
    code = f"""
import os, sys
from embvar.native_logs import filtered_native_stderr
os.write(2, b"before\\n")
with filtered_native_stderr():
    os.write(2, {(NOTICE + INFO + WARN).encode()!r})
    print("python line", file=sys.stderr)
    os.write(2, {ERROR.encode()!r})
os.write(2, b"after\\n")
"""
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "before\npython line\n" + ERROR + "after\n"
    proc = _run(code, level="0")
    assert proc.stderr == "before\n" + NOTICE + INFO + WARN + "python line\n" + (
        ERROR + "after\n"
    )


def test_cli_import_of_tensorflow_prints_no_native_lines():
    # On CPUs where TensorFlow turns oneDNN on (AVX-512), its import alone
    # prints four native lines; embvar's command line keeps them off stderr.
    proc = _run("import embvar.cli\nimport tensorflow\nprint(tensorflow.__name__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "tensorflow\n"
    assert [line for line in proc.stderr.splitlines() if line.strip()] == []


def test_filtered_block_with_stderr_closed_or_broken():
    # Closed: the block runs unfiltered; a closed pipe: what was held is dropped.
    code = """
import os
from embvar.native_logs import filtered_native_stderr
with filtered_native_stderr():
    try:
        os.write(2, b"a line\\n")
    except OSError:  # stderr closed, and the block unfiltered
        pass
    os.write(1, b"ran\\n")
print("done")
"""
    proc = _run(code, stderr=None, preexec_fn=lambda: os.close(2))
    assert proc.returncode == 0 and proc.stdout == "ran\ndone\n"
    read, write = os.pipe()
    os.close(read)
    proc = _run(code, stderr=write)
    os.close(write)
    assert proc.returncode == 0 and proc.stdout == "ran\ndone\n"


def test_filtered_block_writes_back_the_bytes_it_held():
    code = f"""
import os
from embvar.native_logs import filtered_native_stderr
with filtered_native_stderr():
    os.write(2, b"caf\\xe9 \\xff\\xfe\\n" + {INFO.encode()!r})
"""
    proc = _run(code, text=False)
    assert proc.returncode == 0 and proc.stderr == b"caf\xe9 \xff\xfe\n"
