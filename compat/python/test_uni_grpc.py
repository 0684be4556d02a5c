"""Gyre's unidirectional gRPC transport (`uni_grpc`) driven by a `grpcio` client generated
at test time from the repository's `proto/unistream.proto` (into a temporary directory;
nothing generated is committed), as a Centrifugo client of that transport would use it:
one `Consume` call with the connect request, then a stream of `Push` messages.
"""

import importlib
import json
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import pytest
import requests

from conftest import REPO, _start, _stop, free_port
from gyre_compat import API_KEY, TIMEOUT, connect_token, server_config, unique

CONSUME = "/centrifugal.centrifugo.unistream.CentrifugoUniStream/Consume"
MAX_MESSAGE = 4096


@pytest.fixture(scope="module")
def pb():
    """The generated `unistream_pb2` and `unistream_pb2_grpc` modules."""
    out = tempfile.TemporaryDirectory(prefix="gyre-pycompat-proto-")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO / 'proto'}",
            f"--python_out={out.name}",
            f"--grpc_python_out={out.name}",
            "unistream.proto",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    sys.path.insert(0, out.name)
    try:
        messages = importlib.import_module("unistream_pb2")
        services = importlib.import_module("unistream_pb2_grpc")
        yield messages, services
    finally:
        sys.path.remove(out.name)
        sys.modules.pop("unistream_pb2", None)
        sys.modules.pop("unistream_pb2_grpc", None)
        out.cleanup()


def start_uni_grpc():
    """A server with `uni_grpc` on a port of its own; returns (server, port)."""
    for _ in range(5):
        port = free_port()
        config = server_config()
        config["uni_grpc"] = {
            "enabled": True,
            "address": "127.0.0.1",
            "port": port,
            "max_receive_message_size": MAX_MESSAGE,
        }
        try:
            server = _start(config)
        except RuntimeError as e:
            # The port was taken between the probe and the bind: another one.
            if "in use" in str(e):
                continue
            raise
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "serving uni_grpc connections" not in server.logs():
            time.sleep(0.02)
        if f"127.0.0.1:{port}" in server.logs():
            return server, port
        _stop(server)
    raise RuntimeError("uni_grpc did not start")


@pytest.fixture(scope="module")
def uni_gyre():
    server, port = start_uni_grpc()
    yield server, port
    _stop(server)


@pytest.fixture(scope="module")
def channel(uni_gyre):
    channel = grpc.insecure_channel(f"127.0.0.1:{uni_gyre[1]}")
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    yield channel
    channel.close()


@pytest.fixture(scope="module")
def stub(pb, channel):
    return pb[1].CentrifugoUniStreamStub(channel)


def api(server, method: str, params: dict) -> dict:
    session = requests.Session()
    session.trust_env = False
    response = session.post(
        f"{server.api_url}/{method}",
        json=params,
        headers={"X-API-Key": API_KEY},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "error" not in body, body
    return body


class Pushes:
    """The pushes of one `Consume` call, read on a thread so that every wait is bounded."""

    def __init__(self, call) -> None:
        self.call = call
        self._items = []
        self._cond = threading.Condition()
        self.ended = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for push in self.call:
                with self._cond:
                    self._items.append(push)
                    self._cond.notify_all()
        except grpc.RpcError:
            pass
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def next(self, timeout: float = TIMEOUT):
        """The next push; None when the stream ended first."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._items or self.ended, timeout=timeout)
            assert ok, "no push in time"
            return self._items.pop(0) if self._items else None

    def end(self, timeout: float = TIMEOUT) -> grpc.StatusCode:
        """Waits for the end of the stream; its status."""
        with self._cond:
            assert self._cond.wait_for(lambda: self.ended, timeout=timeout), "stream did not end"
            assert not self._items, self._items
        return self.call.code()


def consume(pb, stub, **fields) -> Pushes:
    return Pushes(stub.Consume(pb[0].ConnectRequest(**fields), timeout=4 * TIMEOUT))


def test_connect_push_publication_and_server_disconnect(pb, stub, uni_gyre):
    server, _ = uni_gyre
    user = unique("uni-")
    ch = unique("forced:uni")
    pushes = consume(pb, stub, token=connect_token(user, channels=[ch]), name="py", version="1")

    first = pushes.next()
    assert first.HasField("connect"), first
    assert first.connect.client and first.connect.expires
    # No protocol pings on this transport, as upstream.
    assert first.connect.ping == 0 and not first.connect.pong
    assert ch in first.connect.subs, first.connect
    assert first.connect.subs[ch].recoverable

    api(server, "publish", {"channel": ch, "data": {"n": 1}})
    push = pushes.next()
    assert push.channel == ch and push.HasField("pub"), push
    assert json.loads(push.pub.data) == {"n": 1}
    assert push.pub.offset == 1

    api(server, "disconnect", {"user": user, "disconnect": {"code": 4001, "reason": "bye"}})
    last = pushes.next()
    assert last.HasField("disconnect"), last
    assert (last.disconnect.code, last.disconnect.reason) == (4001, "bye")
    assert pushes.end() == grpc.StatusCode.OK


def test_refused_connects_end_with_the_mapped_disconnect(pb, stub):
    for token, code, reason in [
        ("not-a-jwt", 3500, "invalid token"),
        # Error 109 (token expired) maps to disconnect 3005.
        (connect_token(unique("uni-"), ttl=-10), 3005, "connection expired"),
    ]:
        pushes = consume(pb, stub, token=token)
        push = pushes.next()
        assert push.HasField("disconnect"), push
        assert (push.disconnect.code, push.disconnect.reason) == (code, reason)
        assert pushes.end() == grpc.StatusCode.OK


def test_garbage_and_oversize_requests_get_grpc_errors(pb, stub, channel, uni_gyre):
    raw = channel.unary_stream(CONSUME, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as garbage:
        list(raw(b"\xff\xff\xff\xff", timeout=TIMEOUT))
    assert garbage.value.code() == grpc.StatusCode.INTERNAL, garbage.value

    big = pb[0].ConnectRequest(token="x" * (2 * MAX_MESSAGE))
    with pytest.raises(grpc.RpcError) as oversize:
        list(stub.Consume(big, timeout=TIMEOUT))
    # tonic's status for a message over the limit (grpc-go answers RESOURCE_EXHAUSTED).
    assert oversize.value.code() == grpc.StatusCode.OUT_OF_RANGE, oversize.value

    # The server is unharmed.
    pushes = consume(pb, stub, token=connect_token(unique("uni-")))
    assert pushes.next().HasField("connect")
    pushes.call.cancel()
    assert "panicked" not in uni_gyre[0].logs()


def test_shutdown_ends_the_stream_with_3001(pb):
    server, port = start_uni_grpc()
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb[1].CentrifugoUniStreamStub(channel)
        pushes = consume(pb, stub, token=connect_token(unique("uni-")))
        assert pushes.next().HasField("connect")
        server.stop()
        last = pushes.next()
        assert last is not None and last.HasField("disconnect"), last
        assert (last.disconnect.code, last.disconnect.reason) == (3001, "shutdown")
        pushes.end()
        channel.close()
    finally:
        _stop(server)
