"""A Ray head started as its own process for the tests, and its processes.

``ray start --head`` runs its daemons detached; ``ray stop`` would stop
every Ray on the machine, so the head here is stopped by the process ids
of its own session: the daemons whose command lines name its temporary
folder, and their descendants (the workers).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RayHead", "free_port", "session_pids", "task_pids"]


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        table[int(entry)] = (ppid, cmd.decode(errors="replace").strip())
    return table


def session_pids(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``, and their descendants."""
    table = _proc_table()
    found = {pid for pid, (_, cmd) in table.items() if marker in cmd}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return sorted(found - {os.getpid()})


def task_pids(marker: str, title: str = "ray::embvar_train") -> list[int]:
    """Workers of the session ``marker`` now running a task titled ``title``."""
    table = _proc_table()
    return [
        pid
        for pid in session_pids(marker)
        if pid in table and table[pid][1].startswith(title)
    ]


class RayHead:
    """``ray start --head --num-cpus N`` on a free port, in a temporary folder."""

    def __init__(self, ray_bin: str, num_cpus: int = 2):
        self.ray_bin = ray_bin
        self.num_cpus = num_cpus
        # Short: Ray's socket paths must stay under the 107-byte limit.
        self.temp_dir = tempfile.mkdtemp(prefix="evray", dir="/tmp")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> RayHead:
        cmd = [
            self.ray_bin,
            "start",
            "--head",
            f"--port={self.port}",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--disable-usage-stats",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            f"--temp-dir={self.temp_dir}",
        ]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        )
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(
                f"ray start failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        # The head listens on this node's address, which it prints.
        found = re.search(r"--address='([^']+)'", proc.stdout + proc.stderr)
        if found:
            self.address = found.group(1)
        return self

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = session_pids(self.temp_dir)
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.time() + 10
            while pids and time.time() < deadline:
                pids = [
                    p
                    for p in pids
                    if Path(f"/proc/{p}").exists() and "(Z)" not in _state(p)
                ]
                time.sleep(0.2)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "(Z)"
    return "(Z)" if stat.rsplit(")", 1)[1].split()[0] == "Z" else "(R)"
