"""centrifuge-python (the bidirectional WebSocket SDK) against Gyre: connect with JWTs and a
token provider, subscriptions with and without subscription tokens, publications from
cent, presence, history, client publish, RPC, join/leave and recovery after reconnects."""

import asyncio
import time

import jwt
import pytest
from cent import Disconnect, DisconnectRequest, HistoryRequest, PublishRequest
from centrifuge import ClientState, ReplyError, StreamPosition, SubscriptionState

from gyre_compat import Recorder, connect_token, new_client, sub_token, unique


async def subscribed(client, channel, **kwargs):
    """A subscription of `client` to `channel`, its Recorder and the subscribed context."""
    rec = Recorder(channel)
    sub = client.new_subscription(channel, events=rec, **kwargs)
    await sub.subscribe()
    ctx = await rec.next("subscribed")
    return sub, rec, ctx


# --- Connect ---------------------------------------------------------------------------


async def test_connect_with_jwt(sdk, aapi):
    user = unique("u-")
    client, rec = await sdk(connect_token(user, info={"role": "reader"}))
    assert client.state == ClientState.CONNECTED
    connected = rec.of("connected")[0]
    assert connected.client == client.client_id and len(connected.client) > 0
    # The token's user and info are what the server knows about the connection.
    channel = unique("news:who-")
    sub, _, _ = await subscribed(client, channel)
    presence = await sub.presence()
    assert list(presence.clients) == [client.client_id]
    info = presence.clients[client.client_id]
    assert (info.user, info.conn_info) == (user, {"role": "reader"})


async def test_connect_with_token_of_another_key_is_3500(gyre):
    rec = Recorder()
    bad = jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, "not-the-secret-" * 3, algorithm="HS256")
    client = new_client(gyre.ws_url, rec, token=bad)
    try:
        await client.connect()
        disconnected = await rec.next("disconnected")
        assert (disconnected.code, disconnected.reason) == (3500, "invalid token")
        assert client.state == ClientState.DISCONNECTED
        assert rec.of("connected") == []
    finally:
        await client.disconnect()


async def test_expired_token_gets_a_new_one_from_the_provider(gyre):
    # The server answers an expired token with error 109; the SDK then asks get_token.
    user = unique("u-")
    calls = []

    async def get_token():
        calls.append(time.time())
        return connect_token(user)

    rec = Recorder()
    client = new_client(gyre.ws_url, rec, token=connect_token(user, ttl=-10), get_token=get_token)
    try:
        await client.connect()
        await rec.next("connected")
        assert len(calls) == 1
        assert client.state == ClientState.CONNECTED
    finally:
        await client.disconnect()


async def test_expired_token_without_provider_ends_unauthorized(gyre):
    rec = Recorder()
    client = new_client(gyre.ws_url, rec, token=connect_token(unique("u-"), ttl=-10))
    try:
        await client.connect()
        # The SDK's own code for "the server said 109 and there is no get_token".
        disconnected = await rec.next("disconnected")
        assert (disconnected.code, disconnected.reason) == (1, "unauthorized")
        assert rec.of("connected") == []
    finally:
        await client.disconnect()


async def test_connection_refresh_with_token_provider(gyre, aapi):
    # Tokens valid for 2 s; client.expired_close_delay is 1 s. The client with a token
    # provider refreshes (refresh command with a new token) and stays connected; the one
    # without is closed with 3005 by the server.
    user = unique("u-")
    channel = unique("news:refresh-")
    calls = []

    async def get_token():
        calls.append(time.time())
        return connect_token(user, ttl=2)

    rec, control_rec = Recorder("refreshing"), Recorder("control")
    client = new_client(gyre.ws_url, rec, token=connect_token(user, ttl=2), get_token=get_token)
    control = new_client(gyre.ws_url, control_rec, token=connect_token(user, ttl=2))
    t0 = time.time()
    try:
        await client.connect()
        await control.connect()
        await rec.next("connected")
        await control_rec.next("connected")
        first_id = client.client_id
        sub, sub_rec, _ = await subscribed(client, channel)

        expired = await control_rec.next("connecting", where=lambda c: c.code != 0, timeout=6)
        assert (expired.code, expired.reason) == (3005, "connection expired")

        # Past the first token's expiry plus the close delay, with a margin.
        await asyncio.sleep(max(0.0, t0 + 4.5 - time.time()))
        assert len(calls) >= 1
        assert rec.of("disconnected") == []
        assert len(rec.of("connecting")) == 1  # only the initial one
        assert client.client_id == first_id and client.state == ClientState.CONNECTED
        await aapi.publish(PublishRequest(channel=channel, data={"still": "here"}))
        assert (await sub_rec.next("publication")).pub.data == {"still": "here"}
    finally:
        await client.disconnect()
        await control.disconnect()


# --- Subscriptions ---------------------------------------------------------------------


async def test_publications_from_cent_arrive_in_order(sdk, aapi):
    channel = unique("news:order-")
    client, _ = await sdk(connect_token(unique("u-")))
    _, rec, ctx = await subscribed(client, channel)
    assert ctx.channel == channel
    for i in range(1, 11):
        await aapi.publish(PublishRequest(channel=channel, data={"n": i}, tags={"k": f"v{i}"}))
    pubs = [ctx.pub for ctx in await rec.publications(10)]
    assert [p.data for p in pubs] == [{"n": i} for i in range(1, 11)]
    assert [p.offset for p in pubs] == list(range(1, 11))
    assert [p.tags for p in pubs] == [{"k": f"v{i}"} for i in range(1, 11)]
    assert all(p.info is None for p in pubs)  # published by the server API


async def test_private_channel_needs_a_subscription_token(sdk, aapi):
    user = unique("u-")
    channel = "$" + unique("secret:")
    client, client_rec = await sdk(connect_token(user))

    denied = client.new_subscription(channel, events=(denied_rec := Recorder("denied")))
    await denied.subscribe()
    unsubscribed = await denied_rec.next("unsubscribed")
    assert (unsubscribed.code, unsubscribed.reason) == (103, "permission denied")
    client.remove_subscription(denied)

    sub, rec, ctx = await subscribed(
        client, channel, token=sub_token(user, channel, info={"seat": 7}), data={"hi": 1}
    )
    assert ctx.channel == channel
    await aapi.publish(PublishRequest(channel=channel, data={"secret": True}))
    assert (await rec.next("publication")).pub.data == {"secret": True}
    history = await sub.history(limit=-1)
    assert [p.data for p in history.publications] == [{"secret": True}]
    presence = await sub.presence()
    assert presence.clients[client.client_id].chan_info == {"seat": 7}
    assert client.state == ClientState.CONNECTED and client_rec.of("disconnected") == []


async def test_private_channel_with_token_provider(sdk, aapi):
    user = unique("u-")
    channel = "$" + unique("secret:")
    asked = []

    async def get_token(ch):
        asked.append(ch)
        return sub_token(user, ch)

    client, _ = await sdk(connect_token(user))
    sub, rec, _ = await subscribed(client, channel, get_token=get_token)
    assert asked == [channel]
    await aapi.publish(PublishRequest(channel=channel, data={"via": "provider"}))
    assert (await rec.next("publication")).pub.data == {"via": "provider"}


async def test_subscription_token_for_another_channel_is_3500(sdk):
    user = unique("u-")
    channel = "$" + unique("secret:")
    client, rec = await sdk(connect_token(user))
    sub = client.new_subscription(channel, token=sub_token(user, channel + "-other"))
    await sub.subscribe()
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (3500, "invalid token")
    assert client.state == ClientState.DISCONNECTED


async def test_unknown_namespace_subscribe_is_102(sdk):
    client, _ = await sdk(connect_token(unique("u-")))
    rec = Recorder()
    sub = client.new_subscription(unique("nowhere:"), events=rec)
    await sub.subscribe()
    unsubscribed = await rec.next("unsubscribed")
    assert (unsubscribed.code, unsubscribed.reason) == (102, "unknown channel")
    assert sub.state == SubscriptionState.UNSUBSCRIBED


async def test_presence_and_presence_stats_from_the_sdk(sdk):
    channel = unique("news:sdk-presence-")
    alice, bob = unique("alice-"), unique("bob-")
    ids = {}
    subs = []
    for name, user in (("a1", alice), ("a2", alice), ("b", bob)):
        client, _ = await sdk(connect_token(user))
        sub, _, _ = await subscribed(client, channel)
        ids[client.client_id] = user
        subs.append(sub)
    presence = await subs[0].presence()
    assert {cid: info.user for cid, info in presence.clients.items()} == ids
    assert all(info.client == cid for cid, info in presence.clients.items())
    stats = await subs[2].presence_stats()
    assert (stats.num_clients, stats.num_users) == (3, 2)


async def test_join_and_leave(sdk):
    channel = unique("news:joins-")
    watcher, _ = await sdk(connect_token(unique("w-")))
    _, rec, _ = await subscribed(watcher, channel, join_leave=True)
    own = await rec.next("join")
    assert own.info.client == watcher.client_id

    user = unique("joiner-")
    joiner, _ = await sdk(connect_token(user, info={"n": 1}))
    sub, _, _ = await subscribed(joiner, channel)
    join = await rec.next("join")
    assert (join.info.client, join.info.user, join.info.conn_info) == (joiner.client_id, user, {"n": 1})
    await sub.unsubscribe()
    leave = await rec.next("leave")
    assert (leave.info.client, leave.info.user) == (joiner.client_id, user)


async def test_history_from_the_sdk(sdk, aapi):
    channel = unique("news:sdk-history-")
    results = [await aapi.publish(PublishRequest(channel=channel, data={"n": i})) for i in range(1, 6)]
    epoch = results[0].epoch
    client, _ = await sdk(connect_token(unique("u-")))
    sub, _, _ = await subscribed(client, channel)

    def ns(h):
        return [p.data["n"] for p in h.publications]

    position = await sub.history()
    assert (position.publications, position.offset, position.epoch) == ([], 5, epoch)
    everything = await sub.history(limit=-1)
    assert ns(everything) == [1, 2, 3, 4, 5]
    assert [p.offset for p in everything.publications] == [1, 2, 3, 4, 5]
    assert ns(await sub.history(limit=2)) == [1, 2]
    assert ns(await sub.history(limit=-1, since=StreamPosition(offset=3, epoch=epoch))) == [4, 5]
    assert ns(await sub.history(limit=2, reverse=True)) == [5, 4]
    with pytest.raises(ReplyError) as err:
        await sub.history(limit=-1, since=StreamPosition(offset=1, epoch="wrong"))
    assert err.value.code == 112


async def test_client_publish_reaches_other_subscribers(sdk, aapi):
    channel = unique("news:talk-")
    alice, bob = unique("alice-"), unique("bob-")
    a, _ = await sdk(connect_token(alice, info={"name": "Alice"}))
    b, _ = await sdk(connect_token(bob))
    a_sub, _, _ = await subscribed(a, channel)
    _, b_rec, _ = await subscribed(b, channel)

    await a_sub.publish({"text": "hello"})
    pub = (await b_rec.next("publication")).pub
    assert pub.data == {"text": "hello"}
    assert pub.offset == 1
    assert (pub.info.user, pub.info.client, pub.info.conn_info) == (alice, a.client_id, {"name": "Alice"})
    history = await aapi.history(HistoryRequest(channel=channel, limit=-1))
    assert [p.data for p in history.publications] == [{"text": "hello"}]
    assert history.publications[0].info.user == alice


async def test_not_allowed_and_not_available(sdk):
    client, _ = await sdk(connect_token(unique("u-")))
    plain = unique("plain:")
    sub, _, _ = await subscribed(client, plain)
    with pytest.raises(ReplyError) as err:
        await sub.publish({"text": "nope"})
    assert err.value.code == 103  # no publish permission in `plain`
    with pytest.raises(ReplyError) as err:
        await sub.presence()
    assert err.value.code == 108  # presence off
    with pytest.raises(ReplyError) as err:
        await sub.history(limit=-1)
    assert err.value.code == 108  # history off
    # Publishing without being subscribed where only subscribers may publish.
    with pytest.raises(ReplyError) as err:
        await client.publish(unique("news:"), {"text": "x"})
    assert err.value.code == 103
    assert client.state == ClientState.CONNECTED


async def test_rpc_ping_and_unknown_method(sdk):
    client, _ = await sdk(connect_token(unique("u-")))
    result = await client.rpc("ping", {"x": 1})
    assert result.data is None
    # With an RPC handler present (ping) but no RPC proxy: 104.
    with pytest.raises(ReplyError) as err:
        await client.rpc("not-configured", {"x": 1})
    assert (err.value.code, err.value.message) == (104, "method not found")
    # The connection stays usable.
    assert (await client.rpc("ping", None)).data is None
    assert client.state == ClientState.CONNECTED


async def test_rpc_without_any_rpc_configured_is_108(gyre_with, sdk):
    server = gyre_with(lambda c: c.pop("rpc"))
    client, _ = await sdk(connect_token(unique("u-")), url=server.ws_url)
    for method in ("ping", "anything"):
        with pytest.raises(ReplyError) as err:
            await client.rpc(method, {})
        assert (err.value.code, err.value.message) == (108, "not available")
    assert client.state == ClientState.CONNECTED


# --- Recovery --------------------------------------------------------------------------


async def _recover_after(cut, sdk, aapi):
    """Subscribe with recovery, receive 2, `cut(client)` the connection while holding the
    client away, publish 5 through cent, let it reconnect: it must report recovered and
    get the 5 in order, then live ones again."""
    user = unique("u-")
    channel = unique("news:recover-")
    client, client_rec = await sdk(connect_token(user), name="client")
    sub, rec, first = await subscribed(client, channel, recoverable=True)
    assert first.recoverable is True
    assert (first.was_recovering, first.recovered) == (False, False)
    epoch = first.stream_position.epoch
    assert first.stream_position.offset == 0 and epoch != ""

    for i in (1, 2):
        await aapi.publish(PublishRequest(channel=channel, data={"n": i}))
    assert [c.pub.offset for c in await rec.publications(2)] == [1, 2]

    client_rec.hold("connecting")  # the SDK awaits on_connecting before reconnecting
    await cut(client, user)
    connecting = await client_rec.next("connecting")
    resubscribing = await rec.next("subscribing")
    assert sub.state == SubscriptionState.SUBSCRIBING
    for i in range(3, 8):
        result = await aapi.publish(PublishRequest(channel=channel, data={"n": i}))
        assert (result.offset, result.epoch) == (i, epoch)
    client_rec.release("connecting")

    await client_rec.next("connected")
    again = await rec.next("subscribed")
    assert (again.was_recovering, again.recovered) == (True, True)
    # After a successful recovery Centrifugo answers with the position the client asked
    # to recover from; the recovered publications move it on.
    assert (again.stream_position.offset, again.stream_position.epoch) == (2, epoch)
    missed = [c.pub for c in await rec.publications(5)]
    assert [p.data["n"] for p in missed] == [3, 4, 5, 6, 7]
    assert [p.offset for p in missed] == [3, 4, 5, 6, 7]

    await aapi.publish(PublishRequest(channel=channel, data={"n": 8}))
    live = (await rec.next("publication")).pub
    assert (live.data, live.offset) == ({"n": 8}, 8)
    assert await rec.quiet("publication", 0.3)  # no duplicates
    return connecting, resubscribing


async def test_recovery_after_server_disconnect_3011(sdk, aapi):
    async def cut(client, user):
        await aapi.disconnect(
            DisconnectRequest(user=user, disconnect=Disconnect(code=3011, reason="force reconnect"))
        )

    connecting, _ = await _recover_after(cut, sdk, aapi)
    assert (connecting.code, connecting.reason) == (3011, "force reconnect")


async def test_recovery_after_the_transport_is_cut(sdk, aapi):
    async def cut(client, user):
        # Drop the TCP connection without a WebSocket close (as a network loss would).
        client._conn.transport.abort()

    connecting, _ = await _recover_after(cut, sdk, aapi)
    assert (connecting.code, connecting.reason) == (1, "transport closed")


async def test_server_side_subscription_recovery_from_token_channels(sdk, aapi):
    user = unique("u-")
    channel = unique("forced:srv-")
    client, rec = await sdk(connect_token(user, channels=[channel]))
    first = await rec.next("subscribed")
    assert first.channel == channel
    assert first.recoverable is True
    epoch = first.stream_position.epoch
    await aapi.publish(PublishRequest(channel=channel, data={"n": 1}))
    assert (await rec.next("publication")).pub.offset == 1

    rec.hold("connecting")
    await aapi.disconnect(
        DisconnectRequest(user=user, disconnect=Disconnect(code=3011, reason="force reconnect"))
    )
    assert (await rec.next("connecting")).code == 3011
    for i in (2, 3, 4):
        await aapi.publish(PublishRequest(channel=channel, data={"n": i}))
    rec.release("connecting")

    await rec.next("connected")
    again = await rec.next("subscribed")
    assert again.channel == channel
    assert (again.was_recovering, again.recovered) == (True, True)
    assert (again.stream_position.offset, again.stream_position.epoch) == (1, epoch)
    missed = [await rec.next("publication") for _ in range(3)]
    assert [(c.channel, c.pub.data["n"], c.pub.offset) for c in missed] == [
        (channel, 2, 2),
        (channel, 3, 3),
        (channel, 4, 4),
    ]
