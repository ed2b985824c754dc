"""A Ray cluster of its own on this machine, for tests and benchmarks: a head and more nodes on
127.0.0.1 (one CPU each by default), started with `ray start` inside a new PID namespace
(`unshare --pid --fork --mount-proc`), so stopping it ends every process it started and no other Ray
on the machine (`ray stop` would end them all)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# Token authentication off: the cluster only listens on 127.0.0.1 and lives as long as one test.
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRayCluster:
    """`with LocalRayCluster(nodes=2) as address:` -> 'host:port' of the head."""

    def __init__(self, nodes: int = 2, cpus: int = 1, pin: bool = False):
        """`pin`: each node's processes on a core of their own (taskset), so a node is a CPU's worth of
        machine as a one-CPU node elsewhere would be (for measuring how work spreads over nodes)."""
        self.nodes, self.cpus, self.pin = nodes, cpus, pin
        self.address = ""
        self._holder: subprocess.Popen | None = None
        self._temp = ""

    def __enter__(self) -> str:
        ray = str(Path(sys.executable).with_name("ray"))
        port = _free_port()
        self._temp = tempfile.mkdtemp(prefix="nrray", dir="/tmp")  # Ray's socket paths must stay short
        common = f"--node-ip-address 127.0.0.1 --num-cpus {self.cpus} --disable-usage-stats"
        cores = os.cpu_count() or 1

        def on(i: int) -> str:
            return f"taskset -c {i % cores} " if self.pin else ""
        steps = [f"{on(0)}{ray} start --head --port {port} {common} --include-dashboard false --temp-dir {self._temp} "
                 f">{self._temp}/head.log 2>&1"]
        steps += [f"{on(i)}{ray} start --address 127.0.0.1:{port} {common} >{self._temp}/node{i}.log 2>&1"
                  for i in range(1, self.nodes)]
        script = "set -e; " + "; ".join(steps) + "; echo ready; exec sleep infinity"
        self._holder = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "bash", "-c", script],
            env=ENV, stdout=subprocess.PIPE, text=True, start_new_session=True)
        if self._holder.stdout.readline().strip() != "ready":
            logs = "".join(p.read_text()[-2000:] for p in Path(self._temp).glob("*.log"))
            self.__exit__()
            raise RuntimeError(f"the Ray cluster did not start: {logs}")
        self.address = f"127.0.0.1:{port}"
        return self.address

    def __exit__(self, *exc) -> None:
        if self._holder is not None:
            os.killpg(self._holder.pid, signal.SIGKILL)  # unshare --kill-child: the namespace and all in it end
            self._holder.wait(30)
            self._holder = None
        shutil.rmtree(self._temp, ignore_errors=True)
