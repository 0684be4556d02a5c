"""An application backend for Centrifugo's event proxies, in both flavours at once.

* HTTP: an aiohttp server; `http://127.0.0.1:<port>/<event>` takes the JSON POST of one
  event (`connect`, `refresh`, `subscribe`, `publish`, `sub_refresh`, `rpc`).
* gRPC: a `grpcio` server implementing `centrifugal.centrifugo.proxy.CentrifugoProxy`
  from the repository's `proto/proxy.proto` (stubs generated at test time into a
  temporary directory, as test_grpc_api.py does for api.proto); `grpc://127.0.0.1:<port>`.

Both answer from one table of scripted answers, written in the JSON shape of the HTTP
flavour (`{"result": ...}`, `{"error": ...}`, `{"disconnect": ...}`); the gRPC flavour
turns them into the protobuf response (payload `bytes` fields hold the JSON encoding of
the value). Every request is recorded in the same JSON shape too, with the HTTP headers
or the gRPC metadata it came with, so a test reads requests the same way for both
flavours.

The servers run on a thread of their own (own event loop, own gRPC worker pool), so one
backend serves tests of any event loop and scope.
"""

import asyncio
import importlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import grpc
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]

EVENTS = ("connect", "refresh", "subscribe", "publish", "sub_refresh", "rpc")

# gRPC method name → (event, request message, response message).
GRPC_METHODS = {
    "Connect": ("connect", "ConnectRequest", "ConnectResponse"),
    "Refresh": ("refresh", "RefreshRequest", "RefreshResponse"),
    "Subscribe": ("subscribe", "SubscribeRequest", "SubscribeResponse"),
    "Publish": ("publish", "PublishRequest", "PublishResponse"),
    "RPC": ("rpc", "RPCRequest", "RPCResponse"),
    "SubRefresh": ("sub_refresh", "SubRefreshRequest", "SubRefreshResponse"),
}

_pb_lock = threading.Lock()
_pb_modules: Optional[Tuple[Any, Any]] = None
_pb_dir: Optional[tempfile.TemporaryDirectory] = None


def proxy_pb() -> Tuple[Any, Any]:
    """`proxy_pb2` and `proxy_pb2_grpc`, generated once per test session from
    `proto/proxy.proto`."""
    global _pb_modules, _pb_dir
    with _pb_lock:
        if _pb_modules is None:
            _pb_dir = tempfile.TemporaryDirectory(prefix="gyre-pycompat-proxy-proto-")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "grpc_tools.protoc",
                    f"-I{REPO / 'proto'}",
                    f"--python_out={_pb_dir.name}",
                    f"--grpc_python_out={_pb_dir.name}",
                    "proxy.proto",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            sys.path.insert(0, _pb_dir.name)
            try:
                _pb_modules = (
                    importlib.import_module("proxy_pb2"),
                    importlib.import_module("proxy_pb2_grpc"),
                )
            finally:
                sys.path.remove(_pb_dir.name)
        return _pb_modules


# --- scripted answers ------------------------------------------------------------------


@dataclass
class Delay:
    """Answer `answer` after `seconds` (longer than the proxy timeout: a timeout)."""

    seconds: float
    answer: Any


@dataclass
class Fail:
    """No answer: HTTP status `status` (default 500), or gRPC status `grpc_code`."""

    status: int = 500
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL


Answer = Union[dict, Delay, Fail, Callable[["Request"], Any]]


@dataclass
class Request:
    """One request the backend got, in the JSON shape of the HTTP flavour."""

    event: str
    flavour: str
    body: Dict[str, Any]
    # Header (HTTP) or metadata (gRPC) names in lowercase → value (several values of one
    # name joined with ", ").
    headers: Dict[str, str]
    at: float = field(default_factory=time.time)

    @property
    def key(self) -> Optional[str]:
        return key_of(self.event, self.body)


def key_of(event: str, body: Dict[str, Any]) -> Optional[str]:
    """What scripted answers of an event are keyed by: the connect data's `key`, the user
    of a refresh, the channel of subscribe/publish/sub_refresh, the RPC method."""
    if event == "connect":
        data = body.get("data")
        return data.get("key") if isinstance(data, dict) else None
    if event == "refresh":
        return body.get("user")
    if event == "rpc":
        return body.get("method")
    return body.get("channel")


# --- JSON ⇄ protobuf --------------------------------------------------------------------


def _payload(raw: bytes) -> Any:
    """Payload bytes as the JSON they hold (the HTTP flavour carries them as raw JSON)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def message_to_json(message) -> Dict[str, Any]:
    """A protobuf message as the HTTP flavour would carry it: set fields only, payload
    bytes as the JSON value they hold."""

    def value(fd, v):
        if fd.message_type is not None:
            return message_to_json(v)
        if isinstance(v, bytes):
            return _payload(v)
        return v

    out: Dict[str, Any] = {}
    for fd, v in message.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            out[fd.name] = {k: value(value_fd, item) for k, item in v.items()}
        elif fd.is_repeated:
            out[fd.name] = [value(fd, item) for item in v]
        else:
            out[fd.name] = value(fd, v)
    return out


def json_to_message(message, data: Dict[str, Any]):
    """Fills `message` from the JSON shape of the HTTP flavour; payload `bytes` fields
    get the JSON encoding of their value. Unknown keys are a test bug: KeyError."""
    from google.protobuf.descriptor import FieldDescriptor

    def scalar(fd, v):
        if fd.type == FieldDescriptor.TYPE_BYTES:
            return v if isinstance(v, bytes) else json.dumps(v, separators=(",", ":")).encode()
        return v

    desc = message.DESCRIPTOR
    for name, v in data.items():
        fd = desc.fields_by_name[name]
        target = getattr(message, name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            for k, item in v.items():
                if value_fd.message_type is not None:
                    json_to_message(target[k], item)
                else:
                    target[k] = scalar(value_fd, item)
        elif fd.is_repeated:
            for item in v:
                if fd.message_type is not None:
                    json_to_message(target.add(), item)
                else:
                    target.append(scalar(fd, item))
        elif fd.message_type is not None:
            target.SetInParent()
            json_to_message(target, v)
        else:
            setattr(message, name, scalar(fd, v))
    return message


# --- the backend -----------------------------------------------------------------------


class ProxyBackend:
    """Both proxy flavours over one answer table and one request log.

    `answer(event, value, key=None)` scripts the answer of an event: for one key
    (see `key_of`) or, with `key=None`, for every request of the event that has no
    answer of its own. An event without any answer gets `{"result": {}}`.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._answers: Dict[Tuple[str, Optional[str]], Answer] = {}
        self._requests: List[Request] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._grpc: Optional[grpc.Server] = None
        self.http_port = 0
        self.grpc_port = 0

    # -- lifecycle

    def start(self) -> "ProxyBackend":
        pb, pb_grpc = proxy_pb()
        self._start_http()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        pb_grpc.add_CentrifugoProxyServicer_to_server(self._servicer(pb, pb_grpc), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        if self.grpc_port == 0:
            raise RuntimeError("the gRPC proxy backend could not bind a port")
        self._grpc.start()
        return self

    def _start_http(self) -> None:
        started = threading.Event()
        failure: List[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                app = web.Application()
                app.router.add_post("/{event}", self._http_handler)
                self._runner = web.AppRunner(app, access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                loop.run_until_complete(site.start())
                self.http_port = site._server.sockets[0].getsockname()[1]
            except BaseException as e:  # noqa: BLE001 - reported to the starting thread
                failure.append(e)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="proxy-backend-http", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10):
            raise RuntimeError("the HTTP proxy backend did not start")
        if failure:
            raise failure[0]

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=0).wait(timeout=5)
            self._grpc = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop = None

    # -- endpoints

    def endpoint(self, flavour: str, event: str) -> str:
        """The proxy `endpoint` for `event` in `flavour` (`http` or `grpc`)."""
        if flavour == "http":
            return f"http://127.0.0.1:{self.http_port}/{event}"
        if flavour == "grpc":
            return f"grpc://127.0.0.1:{self.grpc_port}"
        raise ValueError(flavour)

    # -- script and log

    def answer(self, event: str, value: Answer, key: Optional[str] = None) -> None:
        assert event in EVENTS, event
        with self._lock:
            self._answers[(event, key)] = value

    def forget_requests(self) -> None:
        """Drops the request log, so a test sees only the requests it caused (the
        backend serves every test of a module, and both flavours use the same keys)."""
        with self._lock:
            self._requests.clear()

    def requests(self, event: str, key: Optional[str] = None) -> List[Request]:
        """The requests of `event` so far (of one key when given), oldest first."""
        with self._lock:
            return [
                r for r in self._requests if r.event == event and (key is None or r.key == key)
            ]

    async def wait_requests(
        self, event: str, n: int = 1, key: Optional[str] = None, timeout: float = 10.0
    ) -> List[Request]:
        """Waits (at most `timeout`) until `n` requests of `event` (and `key`) arrived."""

        def wait() -> List[Request]:
            with self._lock:
                self._lock.wait_for(lambda: len(self._matching(event, key)) >= n, timeout=timeout)
                got = self._matching(event, key)
            if len(got) < n:
                raise AssertionError(
                    f"{len(got)} '{event}' proxy request(s) (key {key!r}) of {n} within "
                    f"{timeout}s; all requests: {[(r.event, r.key) for r in self._requests]}"
                )
            return got

        return await asyncio.to_thread(wait)

    def _matching(self, event: str, key: Optional[str]) -> List[Request]:
        return [r for r in self._requests if r.event == event and (key is None or r.key == key)]

    def _record(self, request: Request) -> Answer:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            found = self._answers.get((request.event, request.key))
            if found is None:
                found = self._answers.get((request.event, None), {"result": {}})
        while callable(found) and not isinstance(found, (Delay, Fail)):
            found = found(request)
        return found

    # -- HTTP flavour

    async def _http_handler(self, request: web.Request) -> web.Response:
        event = request.match_info["event"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"__unparsable__": raw.decode(errors="replace")}
        headers: Dict[str, str] = {}
        for name in request.headers:
            lname = name.lower()
            if lname not in headers:
                headers[lname] = ", ".join(request.headers.getall(name))
        answer = self._record(Request(event=event, flavour="http", body=body, headers=headers))
        if isinstance(answer, Delay):
            await asyncio.sleep(answer.seconds)
            answer = answer.answer
        if isinstance(answer, Fail):
            return web.Response(status=answer.status, text="scripted failure")
        return web.json_response(answer)

    # -- gRPC flavour

    def _servicer(self, pb, pb_grpc):
        backend = self

        def method(event: str, response_name: str):
            def call(self_, request, context):
                headers: Dict[str, str] = {}
                for k, v in context.invocation_metadata():
                    k = k.lower()
                    headers[k] = f"{headers[k]}, {v}" if k in headers else v
                answer = backend._record(
                    Request(
                        event=event,
                        flavour="grpc",
                        body=message_to_json(request),
                        headers=headers,
                    )
                )
                if isinstance(answer, Delay):
                    time.sleep(answer.seconds)
                    answer = answer.answer
                if isinstance(answer, Fail):
                    context.abort(answer.grpc_code, "scripted failure")
                return json_to_message(getattr(pb, response_name)(), answer)

            return call

        methods = {
            name: method(event, response) for name, (event, _, response) in GRPC_METHODS.items()
        }
        servicer_cls = type("Servicer", (pb_grpc.CentrifugoProxyServicer,), methods)
        return servicer_cls()
