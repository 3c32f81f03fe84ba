"""Starts and stops a local anvil node (npm's @foundry-rs/anvil) on a free loopback port."""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ledger.errors import ChainError, NodeUnreachableError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_PLATFORMS = {("Linux", "x86_64"): "linux-amd64", ("Linux", "aarch64"): "linux-arm64"}
_PLATFORM_DIR = _PLATFORMS.get((platform.system(), platform.machine()), "linux-amd64")
# The native binary inside npm's platform package: npm's bin/ entry is a Node wrapper that
# exits at once on SIGTERM while the real node lingers, so we supervise the binary itself.
ANVIL_BINARY = (
    PROJECT_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{_PLATFORM_DIR}" / "bin" / "anvil"
)
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _answers(url: str) -> bool:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    request = urllib.request.Request(  # noqa: S310 - loopback URL we built ourselves
        url, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1.0) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _terminate_with_parent() -> Callable[[], None]:
    """What the child runs before exec: SIGTERM when the thread that started it ends (Linux;
    its process dying ends it), so a supervisor killed with SIGKILL leaves no orphan node,
    and the node saves its state. `prctl` is looked up here, in the parent: the child of a
    threaded process must not load libraries (another thread may have held the loader's
    lock at the fork)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return in_child


class AnvilNode:
    """A supervised anvil process. Use as a context manager, or `start()` / `stop()`.

    With `state_file`, anvil loads the chain from it on start and saves it on stop (and
    every `state_interval` seconds), so a restart loses nothing. With `die_with_parent`,
    the node is stopped (and saves its state) when the process that started it dies.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        state_file: Path | None = None,
        state_interval: int | None = None,
        block_time: float | None = None,
        binary: Path = ANVIL_BINARY,
        log_file: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.state_file = state_file
        self.state_interval = state_interval
        self.block_time = block_time
        self.binary = binary
        self.log_file = log_file
        self.die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The node's JSON-RPC address."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The anvil command line."""
        args = [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port)]
        # Enough gas for large outcome batches; real chains cap a transaction (EIP-7825)
        # and the ledger sizes its batches under that cap itself.
        args += ["--gas-limit", "60000000"]
        if self.state_file is not None:
            args += ["--state", str(self.state_file)]
            if self.state_interval is not None:
                args += ["--state-interval", str(self.state_interval)]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        return args

    def start(self) -> AnvilNode:
        """Start anvil and return once it answers JSON-RPC (or raise)."""
        if not self.binary.exists():
            raise ChainError(f"anvil is not installed at {self.binary}: run `npm ci`")
        if _port_taken(self.port):
            # Otherwise the readiness check would take whatever answers there for our node.
            raise ChainError(f"port {self.port} on 127.0.0.1 is in use: cannot start anvil there")
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_terminate_with_parent() if self.die_with_parent else None,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._process.poll() is not None or not _answers(self.url):
            if self._process.poll() is not None:
                raise ChainError(f"anvil exited with code {self._process.returncode} on start")
            if time.monotonic() > deadline:
                self.stop()
                raise NodeUnreachableError(
                    f"anvil did not answer at {self.url} within {START_TIMEOUT_S}s"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop anvil gracefully (it saves its state on SIGTERM), killing it if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """Kill anvil at once, as a crash would (nothing saved)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
