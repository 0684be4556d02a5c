"""cent's synchronous `Client` acting on users connected with centrifuge-python: server-side
subscribe/unsubscribe, disconnect, refresh, presence, channels and info, each checked on
what the connected client sees (or what the API reports about it)."""

import time

from cent import (
    ChannelsRequest,
    Client,
    Disconnect,
    DisconnectRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from centrifuge import ClientState, SubscriptionState

from gyre_compat import API_KEY, TIMEOUT, Recorder, blocking, connect_token, requests_session, unique


async def test_api_subscribe_and_unsubscribe_a_server_side_subscription(api, sdk):
    user = unique("u-")
    channel = unique("news:server-sub-")
    client, rec = await sdk(connect_token(user), name=user)

    await blocking(api.subscribe, SubscribeRequest(user=user, channel=channel, data={"hello": 1}))
    subscribed = await rec.next("subscribed")
    assert subscribed.channel == channel
    assert subscribed.data == {"hello": 1}
    assert (subscribed.was_recovering, subscribed.recovered) == (False, False)

    await blocking(api.publish, PublishRequest(channel=channel, data={"text": "to server sub"}))
    pub = await rec.next("publication")
    assert pub.channel == channel
    assert pub.pub.data == {"text": "to server sub"}
    assert pub.pub.offset == 1

    await blocking(api.unsubscribe, UnsubscribeRequest(user=user, channel=channel))
    unsubscribed = await rec.next("unsubscribed")
    assert unsubscribed.channel == channel
    await blocking(api.publish, PublishRequest(channel=channel, data={"text": "after"}))
    assert await rec.quiet("publication", 0.5), rec.events
    assert client.state == ClientState.CONNECTED


async def test_api_unsubscribe_ends_a_client_side_subscription_with_2000(api, sdk):
    user = unique("u-")
    channel = unique("news:client-sub-")
    client, _ = await sdk(connect_token(user))
    sub_rec = Recorder("sub")
    sub = client.new_subscription(channel, events=sub_rec)
    await sub.subscribe()
    await sub_rec.next("subscribed")

    await blocking(api.unsubscribe, UnsubscribeRequest(user=user, channel=channel))
    unsubscribed = await sub_rec.next("unsubscribed")
    assert (unsubscribed.code, unsubscribed.reason) == (2000, "server unsubscribe")
    assert sub.state == SubscriptionState.UNSUBSCRIBED
    assert client.state == ClientState.CONNECTED


async def test_api_disconnect_default_code_is_terminal_3503(api, sdk):
    user = unique("u-")
    client, rec = await sdk(connect_token(user))
    await blocking(api.disconnect, DisconnectRequest(user=user))
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (3503, "force disconnect")
    assert client.state == ClientState.DISCONNECTED


async def test_api_disconnect_custom_terminal_code(api, sdk):
    user = unique("u-")
    client, rec = await sdk(connect_token(user))
    await blocking(
        api.disconnect, DisconnectRequest(user=user, disconnect=Disconnect(code=4501, reason="go away"))
    )
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (4501, "go away")
    assert client.state == ClientState.DISCONNECTED


async def test_api_disconnect_with_reconnect_code_makes_the_client_reconnect(api, sdk):
    user = unique("u-")
    client, rec = await sdk(connect_token(user))
    first_id = client.client_id
    await blocking(
        api.disconnect,
        DisconnectRequest(user=user, disconnect=Disconnect(code=3011, reason="force reconnect")),
    )
    connecting = await rec.next("connecting")
    assert (connecting.code, connecting.reason) == (3011, "force reconnect")
    reconnected = await rec.next("connected")
    assert reconnected.client and reconnected.client != first_id
    assert rec.of("disconnected") == []


async def test_api_disconnect_whitelist_and_single_client(api, sdk):
    user = unique("u-")
    keep, keep_rec = await sdk(connect_token(user), name="keep")
    drop, drop_rec = await sdk(connect_token(user), name="drop")
    other, other_rec = await sdk(connect_token(user), name="other")

    # Everyone of the user but the whitelisted connection.
    await blocking(api.disconnect, DisconnectRequest(user=user, whitelist=[keep.client_id]))
    assert (await drop_rec.next("disconnected")).code == 3503
    assert (await other_rec.next("disconnected")).code == 3503
    assert await keep_rec.quiet("disconnected", 0.3)
    assert keep.state == ClientState.CONNECTED

    # Only the named client of the user.
    second, second_rec = await sdk(connect_token(user), name="second")
    await blocking(api.disconnect, DisconnectRequest(user=user, client=second.client_id))
    assert (await second_rec.next("disconnected")).code == 3503
    assert await keep_rec.quiet("disconnected", 0.3)
    assert keep.state == ClientState.CONNECTED


async def test_api_refresh_expired_closes_with_3005_and_client_reconnects(api, sdk):
    user = unique("u-")
    client, rec = await sdk(connect_token(user))
    first_id = client.client_id
    await blocking(api.refresh, RefreshRequest(user=user, expired=True))
    connecting = await rec.next("connecting")
    assert (connecting.code, connecting.reason) == (3005, "connection expired")
    reconnected = await rec.next("connected")
    assert reconnected.client != first_id


async def test_api_refresh_expire_at_sets_the_connection_expiry(api, sdk):
    # A connection without expiry gets one from the API; the client does not refresh
    # (centrifuge-python refreshes only on its own timer), so the server closes it with
    # 3005 once expire_at plus client.expired_close_delay (1 s) has passed - not before.
    user = unique("u-")
    client, rec = await sdk(connect_token(user, ttl=None))
    expire_at = int(time.time()) + 2
    await blocking(api.refresh, RefreshRequest(user=user, expire_at=expire_at))
    assert await rec.quiet("connecting", 0.8), rec.events
    connecting = await rec.next("connecting", timeout=6)
    assert connecting.code == 3005
    assert time.time() >= expire_at


async def test_api_presence_and_presence_stats_of_connected_users(api, sdk):
    channel = unique("news:presence-")
    alice, bob = unique("alice-"), unique("bob-")
    members = []
    for user in (alice, bob, alice):
        client, _ = await sdk(connect_token(user, info={"name": user}))
        sub_rec = Recorder()
        sub = client.new_subscription(channel, events=sub_rec)
        await sub.subscribe()
        await sub_rec.next("subscribed")
        members.append((client.client_id, user))

    presence = await blocking(api.presence, PresenceRequest(channel=channel))
    assert set(presence.presence) == {cid for cid, _ in members}
    for cid, user in members:
        info = presence.presence[cid]
        assert (info.client, info.user) == (cid, user)
        assert info.conn_info == {"name": user}
    stats = await blocking(api.presence_stats, PresenceStatsRequest(channel=channel))
    assert (stats.num_clients, stats.num_users) == (3, 2)


async def test_api_channels_lists_active_channels_with_counts(api, sdk):
    prefix = unique("news:chans-")
    one, two = f"{prefix}-one", f"{prefix}-two"
    for channel, n in ((one, 2), (two, 1)):
        for _ in range(n):
            client, _ = await sdk(connect_token(unique("u-")))
            sub_rec = Recorder()
            sub = client.new_subscription(channel, events=sub_rec)
            await sub.subscribe()
            await sub_rec.next("subscribed")

    matched = await blocking(api.channels, ChannelsRequest(pattern=f"{prefix}-*"))
    assert {ch: info.num_clients for ch, info in matched.channels.items()} == {one: 2, two: 1}
    only_one = await blocking(api.channels, ChannelsRequest(pattern=one))
    assert list(only_one.channels) == [one]
    everything = await blocking(api.channels, ChannelsRequest())
    assert everything.channels[one].num_clients == 2
    assert everything.channels[two].num_clients == 1


async def test_api_info_counts_this_node(fresh_gyre, sdk):
    api = Client(fresh_gyre.api_url, API_KEY, timeout=TIMEOUT, session=requests_session())
    channel = unique("news:info-")
    alice, bob = unique("alice-"), unique("bob-")
    for user in (alice, alice, bob):
        client, _ = await sdk(connect_token(user), url=fresh_gyre.ws_url)
        sub_rec = Recorder()
        sub = client.new_subscription(channel, events=sub_rec)
        await sub.subscribe()
        await sub_rec.next("subscribed")

    info = await blocking(api.info, InfoRequest())
    assert len(info.nodes) == 1
    node = info.nodes[0]
    assert node.uid and node.name and node.version
    assert (node.num_clients, node.num_users, node.num_channels, node.num_subs) == (3, 2, 1, 3)
    api.close()
