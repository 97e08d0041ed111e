"""Keep TensorFlow's native start-up log lines off the command line's stderr.

TensorFlow logs through Abseil, which writes every message logged before its
logging is initialised to stderr whatever ``TF_CPP_MIN_LOG_LEVEL`` says. On
CPUs where TensorFlow turns oneDNN on by default (AVX-512 and newer), its
import prints four such lines::

    WARNING: All log messages before absl::InitializeLog() is called are ...
    I0000 00:00:1796358769.398071   13920 port.cc:153] oneDNN custom ...

so a one-line error would arrive as five. :func:`install` makes the first
``import tensorflow`` of the process run with the native stderr (file
descriptor 2) sent to a temporary file; afterwards the file's lines are
written back to stderr, except the native lines below the level
``TF_CPP_MIN_LOG_LEVEL`` asks for (0: everything, 1: no INFO, 2: no
WARNING either) and Abseil's notice about them. Other lines (Python's
warnings, a message's continuation lines) are all written back.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

__all__ = ["install", "filtered_native_stderr", "keep_line"]

# A native log line: severity letter, date (MMDD), time (before Abseil's
# initialisation: 00:00 and the seconds since the epoch), thread id, file:line].
_NATIVE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] ")
_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called"
_LEVELS = {"I": 0, "W": 1, "E": 2, "F": 3}


def keep_line(line: str, min_level: int) -> bool:
    """Return whether a line of native stderr output is shown at ``min_level``."""
    if line.startswith(_ABSL_NOTICE):
        return min_level <= 0
    match = _NATIVE.match(line)
    return match is None or _LEVELS[match.group(1)] >= min_level


def _min_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


@contextlib.contextmanager
def filtered_native_stderr():
    """Within the block, send file descriptor 2 to a file; then filter it back.

    Lines go back as the bytes they were. Where there is no stderr to
    redirect (closed), the block runs as it is; where stderr cannot be
    written to any more (a closed pipe), what was held is dropped, as a
    direct write would have failed.
    """
    if sys.stderr is not None:
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            level = _min_level()
            kept = [
                line
                for line in held.read().splitlines(keepends=True)
                if keep_line(line.decode("utf-8", errors="replace"), level)
            ]
            with contextlib.suppress(OSError):
                if kept:
                    os.write(2, b"".join(kept))


class _Loader(importlib.abc.Loader):
    """The real loader of ``tensorflow``, run with the native stderr filtered."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with filtered_native_stderr():
            self.loader.exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, once, and wraps its loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Filter the native stderr of this process's first ``import tensorflow``."""
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
