"""Gyre's gRPC server API driven by a `grpcio` client generated at test time from the
repository's `proto/api.proto` (`python -m grpc_tools.protoc` into a temporary directory;
nothing generated is committed): every method answers as `/api/<method>` does on the same
server, and a missing or wrong key is refused with UNAUTHENTICATED.

The PyPI `cent` package (5.2.0, pinned in requirements.txt) has no gRPC client: its
`cent.client` holds only the HTTP `Client` and `AsyncClient` (requests and aiohttp
sessions), so there is no cent gRPC client to run against Gyre here.
"""

import importlib
import json
import subprocess
import sys
import tempfile
import time

import grpc
import pytest
import requests

from conftest import REPO, _start, _stop, free_port
from gyre_compat import API_KEY, TIMEOUT, Recorder, connect_token, new_client, server_config, unique

# Not the HTTP API key: each API must check its own.
GRPC_KEY = "pycompat-grpc-key"


@pytest.fixture(scope="module")
def pb():
    """The generated `api_pb2` and `api_pb2_grpc` modules."""
    out = tempfile.TemporaryDirectory(prefix="gyre-pycompat-proto-")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO / 'proto'}",
            f"--python_out={out.name}",
            f"--grpc_python_out={out.name}",
            "api.proto",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    sys.path.insert(0, out.name)
    try:
        messages = importlib.import_module("api_pb2")
        services = importlib.import_module("api_pb2_grpc")
        yield messages, services
    finally:
        sys.path.remove(out.name)
        sys.modules.pop("api_pb2", None)
        sys.modules.pop("api_pb2_grpc", None)
        out.cleanup()


@pytest.fixture(scope="module")
def grpc_gyre():
    """A server with the gRPC API on a port of its own; returns (server, grpc port)."""
    for _ in range(5):
        port = free_port()
        config = server_config()
        config["grpc_api"] = {
            "enabled": True,
            "address": "127.0.0.1",
            "port": port,
            "key": GRPC_KEY,
        }
        try:
            server = _start(config)
        except RuntimeError as e:
            # The port was taken between the probe and the bind: another one.
            if "in use" in str(e):
                continue
            raise
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "serving the gRPC server API" not in server.logs():
            time.sleep(0.02)
        if f"127.0.0.1:{port}" in server.logs():
            yield server, port
            _stop(server)
            return
        _stop(server)
    raise RuntimeError("the gRPC API did not start")


@pytest.fixture(scope="module")
def stub(pb, grpc_gyre):
    """`stub(key)`: a CentrifugoApi stub whose calls carry `authorization: apikey <key>`
    (no metadata when key is None)."""
    _, services = pb
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_gyre[1]}")
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)

    class Keyed:
        def __init__(self, key):
            self._stub = services.CentrifugoApiStub(channel)
            self._metadata = None if key is None else [("authorization", f"apikey {key}")]

        def __getattr__(self, name):
            method = getattr(self._stub, name)
            return lambda request: method(request, metadata=self._metadata, timeout=TIMEOUT)

    yield Keyed
    channel.close()


def http(server, method: str, params: dict) -> dict:
    """The whole JSON answer of `/api/<method>`."""
    session = requests.Session()
    session.trust_env = False
    response = session.post(
        f"{server.api_url}/{method}",
        json=params,
        headers={"X-API-Key": API_KEY},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def decode_payload(raw: bytes):
    """Payload bytes as the JSON value they hold (the HTTP API writes them so)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def as_json(message) -> dict:
    """A protobuf message as the HTTP API's JSON would carry it: only fields that are
    set, 64-bit numbers as numbers, payload bytes as the JSON they hold."""

    def value(field, v):
        if field.message_type is not None:
            return as_json(v)
        if isinstance(v, bytes):
            return decode_payload(v)
        return v

    out = {}
    for field, v in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: value(value_field, item) for k, item in v.items()}
        elif field.is_repeated:
            out[field.name] = [value(field, item) for item in v]
        else:
            out[field.name] = value(field, v)
    return out


def normalize(value):
    """Leaves out what protobuf cannot tell from absent (zero numbers, empty strings,
    lists and maps, false, null) and node uptimes, which tick."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "uptime":
                continue
            v = normalize(v)
            if v is None or v is False or v == 0 or v == "" or v == [] or v == {}:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def same(server, stub, method: str, params: dict, request) -> dict:
    """Calls `method` over HTTP and over gRPC with the same request; asserts the answers
    agree and returns the (normalized) answer."""
    want = normalize(http(server, method, params))
    rpc = "".join(part.capitalize() for part in method.split("_"))
    got = normalize(as_json(getattr(stub, rpc)(request)))
    assert got == want, method
    return want


def data(value) -> bytes:
    return json.dumps(value).encode()


async def test_every_method_answers_as_the_http_api(pb, grpc_gyre, stub):
    api, _ = pb
    server, _ = grpc_gyre
    client = stub(GRPC_KEY)
    user = unique("grpc-user-")
    channel = unique("news:grpc-")

    # A connected client of `user`, for the methods that act on connections.
    rec = Recorder("grpc")
    sdk = new_client(server.ws_url, rec, token=connect_token(user))
    await sdk.connect()
    await rec.next("connected")
    try:
        # Server-side subscription through gRPC, then through HTTP, of the same user.
        same(server, client, "subscribe", {"user": user, "channel": channel},
             api.SubscribeRequest(user=user, channel=channel))
        assert (await rec.next("subscribed")).channel == channel
        other = unique("plain:grpc-")
        assert http(server, "subscribe", {"user": user, "channel": other}) == {"result": {}}
        assert (await rec.next("subscribed")).channel == other

        # Publish into history: the HTTP call is the first publication, gRPC's the second.
        first = http(server, "publish", {"channel": channel, "data": {"n": 1}})["result"]
        reply = client.Publish(api.PublishRequest(channel=channel, data=data({"n": 2})))
        assert not reply.HasField("error"), reply
        assert (first["offset"], reply.result.offset) == (1, 2)
        assert reply.result.epoch == first["epoch"]
        got = [(await rec.next("publication")).pub for _ in range(2)]
        assert [(p.offset, p.data) for p in got] == [(1, {"n": 1}), (2, {"n": 2})]

        same(server, client, "publish", {"channel": other, "data": {"x": 1}},
             api.PublishRequest(channel=other, data=data({"x": 1})))
        unknown = same(server, client, "publish", {"channel": "nope:x", "data": {}},
                       api.PublishRequest(channel="nope:x", data=data({})))
        assert unknown["error"]["code"] == 102, unknown

        spare = unique("plain:grpc-")
        broadcast = same(
            server, client, "broadcast", {"channels": [other, spare], "data": {"b": 1}},
            api.BroadcastRequest(channels=[other, spare], data=data({"b": 1})))
        assert len(broadcast["result"]["responses"]) == 2

        history = same(server, client, "history", {"channel": channel, "limit": -1},
                       api.HistoryRequest(channel=channel, limit=-1))
        assert [p["data"] for p in history["result"]["publications"]] == [{"n": 1}, {"n": 2}]
        same(server, client, "history",
             {"channel": channel, "limit": 1, "since": {"offset": 0, "epoch": first["epoch"]}},
             api.HistoryRequest(channel=channel, limit=1,
                                since=api.StreamPosition(offset=0, epoch=first["epoch"])))

        presence = same(server, client, "presence", {"channel": channel},
                        api.PresenceRequest(channel=channel))
        members = list(presence["result"]["presence"].values())
        assert [m["user"] for m in members] == [user], presence
        stats = same(server, client, "presence_stats", {"channel": channel},
                     api.PresenceStatsRequest(channel=channel))
        assert stats["result"] == {"num_clients": 1, "num_users": 1}

        channels = same(server, client, "channels", {"pattern": channel},
                        api.ChannelsRequest(pattern=channel))
        assert channels["result"]["channels"] == {channel: {"num_clients": 1}}
        info = same(server, client, "info", {}, api.InfoRequest())
        assert len(info["result"]["nodes"]) == 1

        batch = same(
            server, client, "batch",
            {"commands": [
                {"presence_stats": {"channel": channel}},
                {"history": {"channel": channel, "limit": 0}},
                {"publish": {"channel": "nope:x", "data": {}}},
            ]},
            api.BatchRequest(commands=[
                api.Command(presence_stats=api.PresenceStatsRequest(channel=channel)),
                api.Command(history=api.HistoryRequest(channel=channel, limit=0)),
                api.Command(publish=api.PublishRequest(channel="nope:x", data=data({}))),
            ]))
        replies = batch["replies"]
        assert replies[0]["presence_stats"] == {"num_clients": 1, "num_users": 1}
        assert replies[2]["error"]["code"] == 102, batch

        same(server, client, "history_remove", {"channel": channel},
             api.HistoryRemoveRequest(channel=channel))
        after = client.History(api.HistoryRequest(channel=channel, limit=-1))
        assert list(after.result.publications) == []

        same(server, client, "refresh",
             {"user": user, "expire_at": int(time.time()) + 3600},
             api.RefreshRequest(user=user, expire_at=int(time.time()) + 3600))

        # Unsubscribe through gRPC: the client leaves the channel.
        same(server, client, "unsubscribe", {"user": user, "channel": other},
             api.UnsubscribeRequest(user=user, channel=other))
        assert (await rec.next("unsubscribed")).channel == other

        # Disconnect through gRPC: the client is closed with the code asked for.
        reply = client.Disconnect(api.DisconnectRequest(
            user=user, disconnect=api.Disconnect(code=4500, reason="grpc bye")))
        assert as_json(reply) == {"result": {}}
        gone = await rec.next("disconnected")
        assert (gone.code, gone.reason) == (4500, "grpc bye")
        assert http(server, "disconnect", {"user": unique("nobody-")}) == {"result": {}}
    finally:
        await sdk.disconnect()


@pytest.mark.parametrize("key", [None, "wrong-key", API_KEY])
def test_missing_or_wrong_key_is_unauthenticated(pb, stub, key):
    api, _ = pb
    with pytest.raises(grpc.RpcError) as refused:
        stub(key).Info(api.InfoRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as refused:
        stub(key).Batch(api.BatchRequest(commands=[api.Command(info=api.InfoRequest())]))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The right key on the same channel is served.
    assert stub(GRPC_KEY).Info(api.InfoRequest()).result.nodes


def test_payloads_round_trip_as_bytes(pb, grpc_gyre, stub):
    api, _ = pb
    server, _ = grpc_gyre
    channel = unique("news:grpc-bytes-")
    raw = {"text": "héllo", "list": [1, 2]}
    reply = stub(GRPC_KEY).Publish(api.PublishRequest(channel=channel, data=data(raw)))
    assert reply.result.offset == 1
    history = http(server, "history", {"channel": channel, "limit": -1})["result"]
    assert [p["data"] for p in history["publications"]] == [raw]
    over_grpc = stub(GRPC_KEY).History(api.HistoryRequest(channel=channel, limit=-1))
    assert [json.loads(p.data) for p in over_grpc.result.publications] == [raw]

