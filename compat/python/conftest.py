"""Starts the `gyre` binary for the Python client compatibility suite.

Builds nothing: the binary comes from `GYRE_BIN`, else `$CARGO_TARGET_DIR/debug/gyre`,
else `<repo>/target/debug/gyre` (`cargo build -p gyre-server --bins` makes it). Each
server gets a temporary config (`gyre_compat.server_config()`) on a free 127.0.0.1 port,
is waited for on `/health`, and is killed by PID when its fixture ends.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import List, Optional

import pytest
from cent import AsyncClient, Client

from gyre_compat import API_KEY, TIMEOUT, Recorder, new_client, requests_session, server_config

REPO = Path(__file__).resolve().parents[2]


def gyre_binary() -> Path:
    if os.environ.get("GYRE_BIN"):
        return Path(os.environ["GYRE_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    return Path(target) / "debug" / "gyre"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GyreServer:
    """A running `gyre` process."""

    def __init__(self, config: dict) -> None:
        binary = gyre_binary()
        if not binary.is_file():
            raise RuntimeError(
                f"gyre binary not found at {binary}: run `cargo build -p gyre-server --bins` "
                "or set GYRE_BIN"
            )
        self.dir = tempfile.TemporaryDirectory(prefix="gyre-pycompat-")
        self.log_path = Path(self.dir.name) / "gyre.log"
        self.proc: Optional[subprocess.Popen] = None
        last_log = ""
        for _ in range(5):
            self.port = free_port()
            cfg = json.loads(json.dumps(config))
            http = cfg.setdefault("http_server", {})
            http["address"] = "127.0.0.1"
            http["port"] = self.port
            config_path = Path(self.dir.name) / "config.json"
            config_path.write_text(json.dumps(cfg, indent=2))
            with open(self.log_path, "wb") as log:
                # No CENTRIFUGO_* (or any other) variables from the caller's environment.
                self.proc = subprocess.Popen(
                    [str(binary), "--config", str(config_path)],
                    cwd=self.dir.name,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_healthy():
                return
            last_log = self.logs()
            self.stop()
            # Another process may have taken the port between the probe and the bind.
            if "in use" not in last_log:
                break
        raise RuntimeError(f"gyre did not become healthy:\n{last_log}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.http_url}/health", timeout=1) as resp:
                    if resp.status == 200 and json.loads(resp.read() or b"null") == {}:
                        return True
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            time.sleep(0.05)
        return False

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.http_url}/api"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the process, SIGKILL if it has not exited after 3 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


_servers: List[GyreServer] = []


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in _servers:
            if server.proc is not None:
                tail = "\n".join(server.logs().splitlines()[-60:])
                report.sections.append((f"gyre log (port {server.port})", tail))


def _start(config: dict) -> GyreServer:
    server = GyreServer(config)
    _servers.append(server)
    return server


def _stop(server: GyreServer) -> None:
    server.stop()
    _servers.remove(server)
    server.dir.cleanup()


@pytest.fixture(scope="session")
def gyre():
    """The server most tests share (every test uses its own channels and users)."""
    server = _start(server_config())
    yield server
    _stop(server)


@pytest.fixture
def fresh_gyre():
    """A server of this test's own, for assertions on node-wide counters."""
    server = _start(server_config())
    yield server
    _stop(server)


@pytest.fixture
def gyre_with():
    """`gyre_with(change)`: a server of this test's own whose config is
    `server_config()` passed through `change` (which edits it in place)."""
    started = []

    def start(change):
        config = server_config()
        change(config)
        server = _start(config)
        started.append(server)
        return server

    yield start
    for server in started:
        _stop(server)


@pytest.fixture
def api(gyre):
    """cent's synchronous Client with the right API key."""
    client = Client(gyre.api_url, API_KEY, timeout=TIMEOUT, session=requests_session())
    yield client
    client.close()


@pytest.fixture
async def aapi(gyre):
    """cent's AsyncClient with the right API key."""
    client = AsyncClient(gyre.api_url, API_KEY, timeout=TIMEOUT)
    yield client
    await client.close()


@pytest.fixture
async def sdk(gyre):
    """`await sdk(token, name=...)`: a connected centrifuge-python client and its
    Recorder (waits for `connected`). Every client made is disconnected at the end."""
    made = []

    async def connect(token: str = "", name: str = "", url: Optional[str] = None, **kwargs):
        rec = Recorder(name)
        client = new_client(url or gyre.ws_url, rec, token=token, **kwargs)
        made.append(client)
        await client.connect()
        initial = await rec.next("connecting")
        assert (initial.code, initial.reason) == (0, "connect called")
        await rec.next("connected")
        return client, rec

    yield connect
    for client in made:
        try:
            await client.disconnect()
        except Exception:  # noqa: BLE001 - teardown of a client a test broke on purpose
            pass

