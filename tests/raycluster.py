"""A real Ray cluster of several nodes on this machine, for tests and benchmarks.

Every node is a ``ray start --block`` process in a process group of its own, with its own
temporary folder (and so its own sockets, logs and object store), its own CPU count and random
ports; stopping it ends that group and nothing else (``ray stop`` would end every Ray process
of the machine)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).parent / "ray")
#: A node's object store: the minimum Ray accepts is 75 MB; the tests move a few MB.
OBJECT_STORE_BYTES = 100 * 1000 * 1000


def _env(token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    # a dead node is declared dead after 3 missed health checks 0.5 s apart, not 5 x 3 s: a
    # task it was running is run again at once
    env.update(RAY_health_check_period_ms="500", RAY_health_check_timeout_ms="500",
               RAY_health_check_failure_threshold="3")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One ``ray start --block`` process group and its temporary folder."""

    proc: subprocess.Popen
    temp_dir: Path
    log: Path

    def raylet(self) -> psutil.Process | None:
        """The node's raylet (its scheduler and object manager), or None once it is gone."""
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if Path(p.exe()).name == "raylet":
                    return p
            except psutil.Error:
                continue
        return None

    def running(self, title_prefix: str) -> list[str]:
        """Titles of this node's worker processes now running a task whose name starts with
        ``title_prefix`` (Ray titles a busy worker ``ray::<task name>``)."""
        raylet = self.raylet()
        if raylet is None:
            return []
        out = []
        try:
            for p in raylet.children():
                cmd = " ".join(p.cmdline())
                if cmd.startswith(f"ray::{title_prefix}"):
                    out.append(cmd.removeprefix("ray::").strip())
        except psutil.Error:
            pass
        return out

    def session(self) -> list[psutil.Process]:
        """Every process of the node: its ``ray start`` started a session of its own, which
        the node's processes (raylet, workers, agents) keep even in process groups of their
        own."""
        out = []
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == self.proc.pid:
                    out.append(p)
            except (ProcessLookupError, PermissionError):
                continue
        return out

    def stop(self) -> None:
        """Kill every process of the node (a throw-away node needs no orderly shutdown)."""
        for _ in range(3):
            procs = self.session()
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            psutil.wait_procs(procs, timeout=10)
        self.proc.wait()


@dataclass
class LocalCluster:
    """A head node and further nodes, all on this machine (stop it when done)."""

    root: Path
    port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)
    #: the cluster's own authentication token (no other process of the machine can join it)
    token: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of a process that joins or uses the cluster (its token)."""
        return _env(self.token)

    def add_node(self, cpus: int, timeout: float = 120) -> Node:
        """Start a node with ``cpus`` CPUs (the first one is the head) and wait until it runs."""
        head = not self.nodes
        temp = Path(tempfile.mkdtemp(prefix="n", dir=self.root))
        args = [RAY, "start", "--block", f"--num-cpus={cpus}", "--num-gpus=0",
                f"--temp-dir={temp}",
                f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats"]
        args += (["--head", f"--port={self.port}", "--include-dashboard=false"] if head
                 else [f"--address={self.address}"])
        log = temp.with_suffix(".log")
        with log.open("w") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env(),
                                    start_new_session=True)
        node = Node(proc, temp, log)
        self.nodes.append(node)
        deadline = time.time() + timeout
        while "Ray runtime started" not in log.read_text():
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"ray start failed:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        self.wait_for(len(self.nodes), timeout)
        return node

    def alive(self) -> dict[str, str]:
        """Node id -> temporary folder of every node the cluster counts as alive."""
        code = (f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
                "print(json.dumps([[n['NodeID'], n['ObjectStoreSocketName'], n['Alive']] "
                "for n in ray.nodes()]))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=self.env(), timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        rows = json.loads(proc.stdout.strip().splitlines()[-1])
        out = {}
        for node_id, sock, alive in rows:
            for node in self.nodes:
                if alive and sock.startswith(str(node.temp_dir) + os.sep):
                    out[node_id] = str(node.temp_dir)
        return out

    def node_id(self, node: Node) -> str:
        return next(k for k, v in self.alive().items() if v == str(node.temp_dir))

    def wait_for(self, n: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while len(self.alive()) != n:
            if time.time() > deadline:
                raise RuntimeError(f"the cluster did not reach {n} nodes")
            time.sleep(1)

    def stop(self) -> None:
        """Stop every node, all at once."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, len(self.nodes))) as pool:
            list(pool.map(Node.stop, self.nodes))
