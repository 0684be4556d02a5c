"""Centrifugo v6 event proxies with the real centrifuge-python SDK: connect, refresh,
subscribe, publish, sub_refresh and RPC proxies of `gyre`, asking the backend of
`proxy_backend.py`. Every test runs twice, once with `http://` endpoints (JSON POST) and
once with `grpc://` endpoints (`centrifugal.centrifugo.proxy.CentrifugoProxy`): both
flavours pass the same table.

Expected behaviour is Centrifugo's (`internal/proxy/*_handler.go`,
`internal/client/handler.go`):

* a backend `{"error": {...}}` reaches the client as that error, `{"disconnect": {...}}`
  closes the connection with that code;
* a backend that is down, fails or times out gives error 100 (internal, temporary) for
  connect, subscribe, publish and RPC; for refresh and sub_refresh it gives the
  connection or subscription one more minute instead;
* an RPC method of an unknown namespace is 104, of a namespace without proxy 108;
* `include_connection_meta` adds the connection's `meta` (connect result or JWT claim) to
  refresh, subscribe, publish, sub_refresh and RPC requests;
* `http_headers` forwards those headers of the WebSocket upgrade request (HTTP headers,
  or gRPC metadata in lowercase); `http.static_headers` / `grpc.static_metadata` go with
  every call.
"""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, List, Optional

import pytest
from centrifuge import ClientState, ReplyError, SubscriptionState

from conftest import _start, _stop, free_port
from gyre_compat import (
    TIMEOUT,
    Recorder,
    connect_token,
    new_client,
    server_config,
    sub_token,
    unique,
)
from proxy_backend import Delay, Fail, ProxyBackend

FLAVOURS = ("http", "grpc")

# Sent by every client of these tests in its WebSocket upgrade request.
UPGRADE_HEADERS = {"X-Custom": "custom-value", "X-Not-Listed": "never-forwarded"}


@pytest.fixture(scope="module")
def backend():
    b = ProxyBackend().start()
    yield b
    b.stop()


def dead_endpoint(flavour: str) -> str:
    """An endpoint nothing listens on."""
    port = free_port()
    return f"{flavour}://127.0.0.1:{port}" + ("/dead" if flavour == "http" else "")


def proxy(backend: ProxyBackend, flavour: str, event: str, **extra: Any) -> dict:
    """One proxy's options: the backend's endpoint for `event`, forwarded `X-Custom`,
    a static header (HTTP) or static metadata (gRPC), connection meta included."""
    options = {
        "endpoint": backend.endpoint(flavour, event),
        "timeout": "3s",
        "http_headers": ["X-Custom"],
        "include_connection_meta": True,
        "http": {"static_headers": {"X-Static": "static-value"}},
        "grpc": {"static_metadata": {"x-static": "static-value"}},
    }
    options.update(extra)
    return options


def proxy_config(backend: ProxyBackend, flavour: str) -> dict:
    """`server_config()` plus every proxy at the backend.

    Namespaces:
    * `px`: subscribe and publish proxies; presence, join/leave and history (10 × 300 s)
      readable by subscribers.
    * `pxr`: subscribe proxy + sub_refresh proxy, presence readable by subscribers.
    * `pxdown`: subscribe, publish and sub_refresh proxies at the named proxy `dead`.
    * `pxslow`: subscribe and publish proxies with a 500 ms timeout (named proxies).
    * `pxrdead`: the subscribe proxy, with the sub_refresh proxy `dead`.
    RPC: `rpc.proxy` for methods without namespace and for `api:`; `other:` at the named
    proxy `other` (static header/metadata `x-proxy-name: other`, no meta); `local:` has
    no proxy; `down:` at `dead`; `slow:` with a 500 ms timeout; `ping` built in.
    """
    cfg = server_config()
    # Runs a server that lacks some proxy (it then refuses what the proxy would decide)
    # instead of refusing to start: the tests of the proxies it has still run.
    cfg["gyre"] = {"allow_unsupported": True}
    cfg["client"]["proxy"] = {
        "connect": {"enabled": True, **proxy(backend, flavour, "connect")},
        "refresh": {"enabled": True, **proxy(backend, flavour, "refresh")},
    }
    # Expired subscriptions are looked at within a test's time.
    cfg["client"]["expired_sub_close_delay"] = "1s"
    cfg["client"]["presence_update_interval"] = "1s"
    cfg["channel"]["proxy"] = {
        "subscribe": proxy(backend, flavour, "subscribe"),
        "publish": proxy(backend, flavour, "publish"),
        "sub_refresh": proxy(backend, flavour, "sub_refresh"),
    }
    dead = dead_endpoint(flavour)
    cfg["proxies"] = [
        {
            "name": "other",
            **proxy(
                backend,
                flavour,
                "rpc",
                include_connection_meta=False,
                http={"static_headers": {"X-Proxy-Name": "other"}},
                grpc={"static_metadata": {"x-proxy-name": "other"}},
            ),
        },
        {"name": "dead", "endpoint": dead, "timeout": "1s"},
        *(
            {"name": f"slow-{event}", **proxy(backend, flavour, event, timeout="500ms")}
            for event in ("subscribe", "publish", "rpc")
        ),
    ]
    cfg["channel"]["namespaces"] += [
        {
            "name": "px",
            "presence": True,
            "join_leave": True,
            "allow_presence_for_subscriber": True,
            "allow_history_for_subscriber": True,
            "history_size": 10,
            "history_ttl": "300s",
            "subscribe_proxy_enabled": True,
            "publish_proxy_enabled": True,
        },
        {
            "name": "pxr",
            "presence": True,
            "allow_presence_for_subscriber": True,
            "subscribe_proxy_enabled": True,
            "sub_refresh_proxy_enabled": True,
        },
        {
            "name": "pxdown",
            "subscribe_proxy_enabled": True,
            "subscribe_proxy_name": "dead",
            "publish_proxy_enabled": True,
            "publish_proxy_name": "dead",
        },
        {
            "name": "pxslow",
            "subscribe_proxy_enabled": True,
            "subscribe_proxy_name": "slow-subscribe",
            "publish_proxy_enabled": True,
            "publish_proxy_name": "slow-publish",
        },
        {
            "name": "pxrdead",
            "subscribe_proxy_enabled": True,
            "sub_refresh_proxy_enabled": True,
            "sub_refresh_proxy_name": "dead",
        },
    ]
    cfg["rpc"] = {
        "ping": {"enabled": True},
        "proxy": proxy(backend, flavour, "rpc"),
        "without_namespace": {"proxy_enabled": True},
        "namespaces": [
            {"name": "api", "proxy_enabled": True},
            {"name": "other", "proxy_enabled": True, "proxy_name": "other"},
            {"name": "local"},
            {"name": "down", "proxy_enabled": True, "proxy_name": "dead"},
            {"name": "slow", "proxy_enabled": True, "proxy_name": "slow-rpc"},
        ],
    }
    return cfg


@dataclass
class Env:
    """A flavour's server, the backend, and the clients a test made."""

    flavour: str
    server: Any
    backend: ProxyBackend
    clients: List[Any] = field(default_factory=list)

    def client(self, rec: Recorder, url: Optional[str] = None, **kwargs: Any):
        kwargs.setdefault("headers", dict(UPGRADE_HEADERS))
        client = new_client(url or self.server.ws_url, rec, **kwargs)
        self.clients.append(client)
        return client

    async def connect(self, answer: Any, url: Optional[str] = None, **kwargs: Any):
        """A client without a token whose connect proxy answer is `answer` (keyed by
        a `key` in the connect data); returns (client, recorder, key) once connected."""
        key = unique("key-")
        self.backend.answer("connect", answer, key=key)
        rec = Recorder(key)
        data = {"key": key, **kwargs.pop("data", {})}
        client = self.client(rec, url=url, data=data, **kwargs)
        await client.connect()
        assert (await rec.next("connecting")).code == 0
        await rec.next("connected")
        return client, rec, key

    async def user(self, user: Optional[str] = None, meta: Any = None, **kwargs: Any):
        """A client of `user` connected through the connect proxy; returns (client, rec)."""
        result = {"user": user or unique("u-")}
        if meta is not None:
            result["meta"] = meta
        client, rec, _ = await self.connect({"result": result}, **kwargs)
        return client, rec


@pytest.fixture(scope="module", params=FLAVOURS)
def proxied(request, backend):
    """`(flavour, server)`: a server whose proxies are the backend's `flavour` endpoints."""
    server = _start(proxy_config(backend, request.param))
    yield request.param, server
    _stop(server)


@pytest.fixture
async def env(proxied, backend):
    flavour, server = proxied
    backend.forget_requests()
    e = Env(flavour=flavour, server=server, backend=backend)
    yield e
    for client in e.clients:
        try:
            await client.disconnect()
        except Exception:  # noqa: BLE001 - teardown of a client a test broke on purpose
            pass


@pytest.fixture
def own_server(proxied, backend):
    """`own_server(change)`: a server of this test's own with the flavour's proxy config
    passed through `change(config, flavour)`."""
    flavour, _ = proxied
    started = []

    def start(change):
        cfg = proxy_config(backend, flavour)
        change(cfg, flavour)
        server = _start(cfg)
        started.append(server)
        return server

    yield start
    for server in started:
        _stop(server)


async def subscribe(client, channel: str, **kwargs: Any):
    """A subscription and its recorder, subscribe() called (the initial `subscribing`
    event taken; nothing else waited for)."""
    rec = Recorder(channel)
    sub = client.new_subscription(channel, events=rec, **kwargs)
    await sub.subscribe()
    assert (await rec.next("subscribing")).code == 0
    return sub, rec


def assert_forwarded_headers(request) -> None:
    """`X-Custom` of the upgrade request and the static header/metadata reached the
    backend; headers not listed did not."""
    h = request.headers
    assert h.get("x-custom") == "custom-value", (request.event, h)
    assert h.get("x-static") == "static-value", (request.event, h)
    assert "x-not-listed" not in h, (request.event, h)


def now() -> int:
    return int(time.time())


# --- connect ---------------------------------------------------------------------------


async def test_connect_proxy_sets_user_info_data_and_server_side_subscriptions(env):
    user = unique("alice-")
    via_channels = unique("px:chan-")
    via_subs = unique("px:subs-")
    hidden = unique("px:hidden-")
    client, rec, key = await env.connect(
        {
            "result": {
                "user": user,
                "info": {"name": "Alice"},
                "data": {"welcome": user},
                "channels": [via_channels],
                "subs": {
                    via_subs: {"info": {"room": "blue"}, "data": {"since": 7}},
                    hidden: {"override": {"presence": {"value": False}}},
                },
            }
        },
        data={"hello": "world"},
        name="proxy-compat",
        version="1.2.3",
    )
    connected = rec.of("connected")[0]
    assert connected.data == {"welcome": user}

    subscribed = {}
    for _ in range(3):
        ctx = await rec.next("subscribed")
        subscribed[ctx.channel] = ctx
    assert set(subscribed) == {via_channels, via_subs, hidden}
    assert subscribed[via_subs].data == {"since": 7}

    # The backend's user and info are the connection's; the subs' info is chan_info.
    presence = await client.presence(via_channels)
    assert list(presence.clients) == [client.client_id]
    info = presence.clients[client.client_id]
    assert (info.user, info.conn_info) == (user, {"name": "Alice"})
    info = (await client.presence(via_subs)).clients[client.client_id]
    assert (info.user, info.conn_info, info.chan_info) == (user, {"name": "Alice"}, {"room": "blue"})
    # override.presence false: subscribed, but not in the presence of the channel.
    assert (await client.presence(hidden)).clients == {}

    [request] = env.backend.requests("connect", key=key)
    body = request.body
    assert body["client"] == client.client_id
    assert (body["transport"], body["protocol"], body["encoding"]) == ("websocket", "json", "json")
    assert body["data"] == {"key": key, "hello": "world"}
    assert (body["name"], body["version"]) == ("proxy-compat", "1.2.3")
    assert_forwarded_headers(request)


async def test_connect_with_token_does_not_ask_the_backend(env):
    rec = Recorder()
    client = env.client(rec, token=connect_token(unique("u-")), data={"key": "token-connect"})
    await client.connect()
    await rec.next("connected")
    assert env.backend.requests("connect", key="token-connect") == []


async def test_connect_proxy_error_and_disconnect_reach_the_client(env):
    # A permanent error: the SDK ends disconnected with the backend's code and message.
    key = unique("key-")
    env.backend.answer("connect", {"error": {"code": 1000, "message": "not you"}}, key=key)
    rec = Recorder("error")
    client = env.client(rec, data={"key": key})
    await client.connect()
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (1000, "not you")
    assert client.state == ClientState.DISCONNECTED

    # A temporary error: an error event, then the SDK asks again.
    key = unique("key-")
    env.backend.answer(
        "connect", {"error": {"code": 1001, "message": "later", "temporary": True}}, key=key
    )
    rec = Recorder("temporary")
    client = env.client(rec, data={"key": key})
    await client.connect()
    error = await rec.next("error")
    assert isinstance(error.error, ReplyError), error
    assert (error.error.code, error.error.message, error.error.temporary) == (1001, "later", True)
    await env.backend.wait_requests("connect", 2, key=key)
    await client.disconnect()

    # A disconnect: the connection is closed with the backend's code and reason
    # (4501 is terminal for the SDK: no reconnect).
    key = unique("key-")
    env.backend.answer("connect", {"disconnect": {"code": 4501, "reason": "go away"}}, key=key)
    rec = Recorder("disconnect")
    client = env.client(rec, data={"key": key})
    await client.connect()
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (4501, "go away")

    # A server-side channel of an unknown namespace: 102 unknown channel.
    key = unique("key-")
    env.backend.answer(
        "connect", {"result": {"user": "u", "channels": ["nonexistent:x"]}}, key=key
    )
    rec = Recorder("unknown channel")
    client = env.client(rec, data={"key": key})
    await client.connect()
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (102, "unknown channel")


async def _connect_fails_with_100(server, env, key: str = "") -> None:
    key = key or unique("key-")
    rec = Recorder("connect 100")
    client = env.client(rec, url=server.ws_url, data={"key": key})
    await client.connect()
    error = await rec.next("error")
    assert isinstance(error.error, ReplyError), error
    assert (error.error.code, error.error.temporary) == (100, True)
    assert rec.of("connected") == []
    await client.disconnect()


async def test_connect_proxy_down_is_error_100(env, own_server):
    def change(cfg, flavour):
        cfg["client"]["proxy"]["connect"]["endpoint"] = dead_endpoint(flavour)

    await _connect_fails_with_100(own_server(change), env)


async def test_connect_proxy_timeout_is_error_100(env, own_server):
    def change(cfg, flavour):
        cfg["client"]["proxy"]["connect"]["timeout"] = "500ms"

    server = own_server(change)
    key = unique("key-")
    env.backend.answer("connect", Delay(2.0, {"result": {"user": "late"}}), key=key)
    await _connect_fails_with_100(server, env, key)
    await env.backend.wait_requests("connect", 1, key=key)


async def test_connect_proxy_failure_is_error_100(env):
    # HTTP status 500 / gRPC status INTERNAL.
    key = unique("key-")
    env.backend.answer("connect", Fail(), key=key)
    rec = Recorder("fail")
    client = env.client(rec, data={"key": key})
    await client.connect()
    error = await rec.next("error")
    assert isinstance(error.error, ReplyError), error
    assert (error.error.code, error.error.temporary) == (100, True)
    await client.disconnect()


# --- refresh ---------------------------------------------------------------------------


async def test_refresh_proxy_extends_the_connection_then_expires_it(env):
    user = unique("u-")
    env.backend.answer(
        "refresh",
        lambda req: {"result": {"expire_at": now() + 2, "info": {"refreshed": True}}},
        key=user,
    )
    client, rec, _ = await env.connect({"result": {"user": user, "expire_at": now() + 2}})
    # Extended twice: the connection lives past two expiries without the SDK doing anything.
    requests = await env.backend.wait_requests("refresh", 2, key=user)
    assert client.state == ClientState.CONNECTED
    assert len(rec.of("connecting")) == 1  # the initial one only
    assert rec.of("disconnected") == []
    body = requests[0].body
    assert (body["client"], body["user"]) == (client.client_id, user)
    assert (body["transport"], body["protocol"], body["encoding"]) == ("websocket", "json", "json")

    # The backend says expired: disconnect 3005, after which the SDK reconnects.
    env.backend.answer("refresh", {"result": {"expired": True}}, key=user)
    connecting = await rec.next("connecting", timeout=10)
    assert (connecting.code, connecting.reason) == (3005, "connection expired")


async def test_refresh_proxy_failure_keeps_the_connection(env):
    user = unique("u-")
    env.backend.answer("refresh", Fail(), key=user)
    client, rec, _ = await env.connect({"result": {"user": user, "expire_at": now() + 2}})
    await env.backend.wait_requests("refresh", 1, key=user)
    # Centrifugo gives the connection one more minute and asks again then.
    assert await rec.quiet("connecting", 2.5)
    assert client.state == ClientState.CONNECTED
    assert len(env.backend.requests("refresh", key=user)) == 1


# --- subscribe -------------------------------------------------------------------------


async def test_subscribe_proxy_allows_with_info_data_and_override(env):
    channel = unique("px:room-")
    alice, bob = unique("alice-"), unique("bob-")

    def answer(req):
        if req.body["user"] == bob:
            return {"result": {"override": {"presence": {"value": False}}}}
        return {"result": {"info": {"seat": 1}, "data": {"welcome": req.body["user"]}}}

    env.backend.answer("subscribe", answer, key=channel)
    a, _ = await env.user(alice)
    b, _ = await env.user(bob)
    sub_a, rec_a = await subscribe(a, channel, data={"want": "in"})
    ctx = await rec_a.next("subscribed")
    assert ctx.data == {"welcome": alice}
    sub_b, rec_b = await subscribe(b, channel)
    await rec_b.next("subscribed")

    # Bob's override turned presence off for him; Alice carries the channel info.
    presence = await sub_a.presence()
    assert list(presence.clients) == [a.client_id]
    info = presence.clients[a.client_id]
    assert (info.user, info.chan_info) == (alice, {"seat": 1})

    request = [r for r in env.backend.requests("subscribe", key=channel) if r.body["user"] == alice][0]
    body = request.body
    assert (body["client"], body["channel"]) == (a.client_id, channel)
    assert body["data"] == {"want": "in"}
    assert (body["transport"], body["protocol"], body["encoding"]) == ("websocket", "json", "json")
    assert "token" not in body or body["token"] == ""
    assert_forwarded_headers(request)


async def test_subscribe_proxy_error_and_disconnect(env):
    client, rec = await env.user()

    # A permanent error: the subscription ends unsubscribed with the backend's code.
    denied = unique("px:denied-")
    env.backend.answer("subscribe", {"error": {"code": 1403, "message": "not for you"}}, key=denied)
    sub, sub_rec = await subscribe(client, denied)
    unsubscribed = await sub_rec.next("unsubscribed")
    assert (unsubscribed.code, unsubscribed.reason) == (1403, "not for you")
    assert sub.state == SubscriptionState.UNSUBSCRIBED

    # A temporary error: an error event, then the SDK subscribes again.
    later = unique("px:later-")
    env.backend.answer(
        "subscribe", {"error": {"code": 1503, "message": "busy", "temporary": True}}, key=later
    )
    sub, sub_rec = await subscribe(client, later)
    error = await sub_rec.next("error")
    assert isinstance(error.error, ReplyError), error
    assert (error.error.code, error.error.message) == (1503, "busy")
    await env.backend.wait_requests("subscribe", 2, key=later)
    await sub.unsubscribe()
    assert client.state == ClientState.CONNECTED

    # A disconnect: the connection is closed with the backend's code.
    gone = unique("px:gone-")
    env.backend.answer("subscribe", {"disconnect": {"code": 4502, "reason": "banned"}}, key=gone)
    await subscribe(client, gone)
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (4502, "banned")


async def test_subscribe_with_token_does_not_ask_the_backend(env):
    user = unique("u-")
    channel = unique("px:tok-")
    client, _ = await env.user(user)
    _, sub_rec = await subscribe(client, channel, token=sub_token(user, channel))
    await sub_rec.next("subscribed")
    assert env.backend.requests("subscribe", key=channel) == []


async def _subscribe_fails_with_100(client, channel: str) -> None:
    sub, rec = await subscribe(client, channel)
    error = await rec.next("error")
    assert isinstance(error.error, ReplyError), error
    assert (error.error.code, error.error.temporary) == (100, True)
    assert rec.of("subscribed") == []
    await sub.unsubscribe()


async def test_subscribe_proxy_down_timeout_and_failure_are_error_100(env):
    client, _ = await env.user()
    await _subscribe_fails_with_100(client, unique("pxdown:"))
    slow = unique("pxslow:")
    env.backend.answer("subscribe", Delay(2.0, {"result": {}}), key=slow)
    await _subscribe_fails_with_100(client, slow)
    failing = unique("px:fail-")
    env.backend.answer("subscribe", Fail(), key=failing)
    await _subscribe_fails_with_100(client, failing)
    assert client.state == ClientState.CONNECTED


# --- publish ---------------------------------------------------------------------------


async def test_publish_proxy_rewrites_data_skips_history_and_sets_tags(env):
    channel = unique("px:pub-")
    publisher, reader = unique("pub-"), unique("reader-")
    r, _ = await env.user(reader)
    sub, sub_rec = await subscribe(r, channel)
    await sub_rec.next("subscribed")
    p, _ = await env.user(publisher)

    env.backend.answer(
        "publish",
        {"result": {"data": {"rewritten": True}, "tags": {"by": "backend"}}},
        key=channel,
    )
    # Publishing needs no subscription when the publish proxy decides.
    await p.publish(channel, {"text": "original"})
    pub = (await sub_rec.next("publication")).pub
    assert pub.data == {"rewritten": True}
    assert pub.tags == {"by": "backend"}
    assert pub.info.user == publisher

    env.backend.answer("publish", {"result": {"skip_history": True}}, key=channel)
    await p.publish(channel, {"text": "not kept"})
    pub = (await sub_rec.next("publication")).pub
    assert pub.data == {"text": "not kept"}  # no data in the result: the client's data
    history = await sub.history(limit=10)
    assert [x.data for x in history.publications] == [{"rewritten": True}]

    requests = env.backend.requests("publish", key=channel)
    assert len(requests) == 2
    body = requests[0].body
    assert (body["client"], body["user"], body["channel"]) == (p.client_id, publisher, channel)
    assert body["data"] == {"text": "original"}
    assert_forwarded_headers(requests[0])


async def test_publish_proxy_error_and_disconnect(env):
    client, rec = await env.user()
    channel = unique("px:deny-")
    env.backend.answer("publish", {"error": {"code": 1404, "message": "read only"}}, key=channel)
    with pytest.raises(ReplyError) as err:
        await client.publish(channel, {"x": 1})
    assert (err.value.code, err.value.message) == (1404, "read only")
    assert client.state == ClientState.CONNECTED

    env.backend.answer("publish", {"disconnect": {"code": 4503, "reason": "spam"}}, key=channel)
    try:
        await client.publish(channel, {"x": 2})
    except Exception:  # noqa: BLE001 - the connection closes under the call
        pass
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (4503, "spam")


async def test_publish_proxy_down_timeout_and_failure_are_error_100(env):
    client, _ = await env.user()
    slow = unique("pxslow:")
    env.backend.answer("publish", Delay(2.0, {"result": {}}), key=slow)
    failing = unique("px:fail-")
    env.backend.answer("publish", Fail(), key=failing)
    for channel in (unique("pxdown:"), slow, failing):
        with pytest.raises(ReplyError) as err:
            await client.publish(channel, {"x": 1})
        assert err.value.code == 100, channel
    assert client.state == ClientState.CONNECTED


# --- sub_refresh -----------------------------------------------------------------------


async def test_sub_refresh_proxy_extends_then_expires_the_subscription(env):
    user = unique("u-")
    channel = unique("pxr:")
    env.backend.answer("subscribe", lambda req: {"result": {"expire_at": now() + 2}}, key=channel)
    env.backend.answer(
        "sub_refresh",
        lambda req: {"result": {"expire_at": now() + 2, "info": {"fresh": True}}},
        key=channel,
    )
    client, _ = await env.user(user)
    sub, rec = await subscribe(client, channel)
    await rec.next("subscribed")

    requests = await env.backend.wait_requests("sub_refresh", 2, key=channel, timeout=15)
    assert sub.state == SubscriptionState.SUBSCRIBED
    assert len(rec.of("subscribing")) == 1  # the initial one only
    body = requests[0].body
    assert (body["client"], body["user"], body["channel"]) == (client.client_id, user, channel)
    # The refreshed info becomes the subscription's channel info: presence shows it from
    # the next periodic presence update on (presence_update_interval 1 s).
    deadline = time.monotonic() + TIMEOUT
    while True:
        info = (await sub.presence()).clients[client.client_id]
        if info.chan_info == {"fresh": True} or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert info.chan_info == {"fresh": True}

    # Expired: the server unsubscribes with 2501, the SDK subscribes again (the
    # subscribe proxy is asked a second time).
    env.backend.answer("sub_refresh", {"result": {"expired": True}}, key=channel)
    resubscribing = await rec.next("subscribing", timeout=10)
    assert (resubscribing.code, resubscribing.reason) == (2501, "subscription expired")
    await env.backend.wait_requests("subscribe", 2, key=channel)


async def test_sub_refresh_proxy_failure_or_down_keeps_the_subscription(env):
    # One subscription whose sub_refresh call fails (HTTP 500 / gRPC INTERNAL), one whose
    # sub_refresh proxy is down (named proxy `dead`).
    failing = unique("pxr:fail-")
    down = unique("pxrdead:")
    for channel in (failing, down):
        env.backend.answer(
            "subscribe", lambda req: {"result": {"expire_at": now() + 2}}, key=channel
        )
    env.backend.answer("sub_refresh", Fail(), key=failing)
    client, _ = await env.user()
    subs = []
    for channel in (failing, down):
        sub, rec = await subscribe(client, channel)
        await rec.next("subscribed")
        subs.append((sub, rec))
    await env.backend.wait_requests("sub_refresh", 1, key=failing)
    # Centrifugo gives both subscriptions one more minute instead of ending them (the
    # expiry + expired_sub_close_delay of the second one pass meanwhile as well).
    assert await subs[0][1].quiet("subscribing", 3.0)
    for sub, rec in subs:
        assert await rec.quiet("subscribing", 0.0), rec.events
        assert rec.of("unsubscribed") == [], rec.events
        assert sub.state == SubscriptionState.SUBSCRIBED
    assert len(env.backend.requests("sub_refresh", key=failing)) == 1
    assert client.state == ClientState.CONNECTED


# --- rpc -------------------------------------------------------------------------------


async def test_rpc_proxy_by_namespace(env):
    user = unique("u-")
    client, _ = await env.user(user)
    env.backend.answer("rpc", lambda req: {"result": {"data": {"echo": req.body.get("data")}}})
    env.backend.answer("rpc", {"result": {"data": {"sum": 3}}}, key="api:sum")

    result = await client.rpc("api:sum", {"a": 1, "b": 2})
    assert result.data == {"sum": 3}
    [request] = env.backend.requests("rpc", key="api:sum")
    body = request.body
    assert (body["client"], body["user"], body["method"]) == (client.client_id, user, "api:sum")
    assert body["data"] == {"a": 1, "b": 2}
    assert (body["transport"], body["protocol"], body["encoding"]) == ("websocket", "json", "json")
    assert_forwarded_headers(request)

    # Without namespace: rpc.without_namespace.proxy_enabled.
    assert (await client.rpc("plain", {"n": 1})).data == {"echo": {"n": 1}}
    # The named proxy `other` (its own static header/metadata).
    assert (await client.rpc("other:thing", {"n": 2})).data == {"echo": {"n": 2}}
    [request] = env.backend.requests("rpc", key="other:thing")
    assert request.headers.get("x-proxy-name") == "other"
    assert request.headers.get("x-custom") == "custom-value"
    # The built-in ping does not reach the backend.
    assert (await client.rpc("ping", None)).data is None
    assert env.backend.requests("rpc", key="ping") == []

    with pytest.raises(ReplyError) as err:
        await client.rpc("unknown:x", {})
    assert (err.value.code, err.value.message) == (104, "method not found")
    with pytest.raises(ReplyError) as err:
        await client.rpc("local:x", {})
    assert (err.value.code, err.value.message) == (108, "not available")
    assert env.backend.requests("rpc", key="unknown:x") == []
    assert env.backend.requests("rpc", key="local:x") == []
    assert client.state == ClientState.CONNECTED


async def test_rpc_proxy_error_disconnect_and_failures(env):
    client, rec = await env.user()
    env.backend.answer(
        "rpc", {"error": {"code": 1500, "message": "bad input", "temporary": True}}, key="api:err"
    )
    with pytest.raises(ReplyError) as err:
        await client.rpc("api:err", {})
    assert (err.value.code, err.value.message, err.value.temporary) == (1500, "bad input", True)

    env.backend.answer("rpc", Delay(2.0, {"result": {}}), key="slow:x")
    env.backend.answer("rpc", Fail(), key="api:fail")
    for method in ("down:x", "slow:x", "api:fail"):
        with pytest.raises(ReplyError) as err:
            await client.rpc(method, {})
        assert err.value.code == 100, method
    assert client.state == ClientState.CONNECTED

    env.backend.answer("rpc", {"disconnect": {"code": 4504, "reason": "bye"}}, key="api:bye")
    try:
        await client.rpc("api:bye", {})
    except Exception:  # noqa: BLE001 - the connection closes under the call
        pass
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (4504, "bye")


# --- connection meta -------------------------------------------------------------------


async def test_connection_meta_from_the_connect_proxy_reaches_the_refresh_proxy(env):
    meta = {"tenant": unique("t-"), "plan": "gold"}
    user = unique("u-")
    env.backend.answer("refresh", lambda req: {"result": {"expire_at": now() + 60}}, key=user)
    _, _, key = await env.connect({"result": {"user": user, "expire_at": now() + 2, "meta": meta}})
    # The connect request itself has no meta.
    assert "meta" not in env.backend.requests("connect", key=key)[0].body
    [request] = await env.backend.wait_requests("refresh", 1, key=user)
    assert request.body.get("meta") == meta, request.body


async def test_connection_meta_from_the_connect_proxy_reaches_channel_and_rpc_proxies(env):
    meta = {"tenant": unique("t-"), "plan": "gold"}
    client, _ = await env.user(meta=meta)
    channel = unique("pxr:meta-")
    env.backend.answer("subscribe", lambda req: {"result": {"expire_at": now() + 2}}, key=channel)
    env.backend.answer("sub_refresh", lambda req: {"result": {"expire_at": now() + 60}}, key=channel)
    _, rec = await subscribe(client, channel)
    await rec.next("subscribed")
    pub_channel = unique("px:meta-")
    await client.publish(pub_channel, {"x": 1})
    await client.rpc("api:meta", {})
    await client.rpc("other:meta", {})

    for event, k in (
        ("subscribe", channel),
        ("publish", pub_channel),
        ("rpc", "api:meta"),
        ("sub_refresh", channel),
    ):
        [request] = await env.backend.wait_requests(event, 1, key=k)
        assert request.body.get("meta") == meta, (event, request.body)
    # The named proxy `other` has include_connection_meta off.
    [request] = env.backend.requests("rpc", key="other:meta")
    assert "meta" not in request.body, request.body


async def test_connection_meta_from_the_jwt_reaches_the_proxies(env):
    meta = {"from": "jwt", "n": 1}
    rec = Recorder()
    client = env.client(rec, token=connect_token(unique("u-"), meta=meta))
    await client.connect()
    await rec.next("connected")
    channel = unique("px:jwt-")
    _, sub_rec = await subscribe(client, channel)
    await sub_rec.next("subscribed")
    await client.rpc("api:jwt-meta", {})
    [request] = env.backend.requests("subscribe", key=channel)
    assert request.body.get("meta") == meta, request.body
    [request] = env.backend.requests("rpc", key="api:jwt-meta")
    assert request.body.get("meta") == meta, request.body
