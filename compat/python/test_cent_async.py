"""cent's `AsyncClient` (aiohttp) against Gyre: every server API method it has that
Centrifugo OSS serves, and its error paths."""

import pytest
from cent import (
    AsyncClient,
    BatchRequest,
    BroadcastRequest,
    CentApiResponseError,
    CentUnauthorizedError,
    ChannelsRequest,
    Disconnect,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    StreamPosition,
    SubscribeRequest,
    UnsubscribeRequest,
)
from cent.dto import HistoryResult, PublishResult
from centrifuge import ClientState

from gyre_compat import TIMEOUT, connect_token, unique


async def test_async_publish_history_and_history_remove(aapi):
    channel = unique("news:async-")
    results = [await aapi.publish(PublishRequest(channel=channel, data={"n": i})) for i in range(1, 5)]
    assert [r.offset for r in results] == [1, 2, 3, 4]
    epoch = results[0].epoch
    assert epoch and all(r.epoch == epoch for r in results)

    def ns(h):
        return [p.data["n"] for p in h.publications]

    assert ns(await aapi.history(HistoryRequest(channel=channel, limit=-1))) == [1, 2, 3, 4]
    assert ns(await aapi.history(HistoryRequest(channel=channel, limit=3))) == [1, 2, 3]
    since = StreamPosition(offset=1, epoch=epoch)
    assert ns(await aapi.history(HistoryRequest(channel=channel, limit=-1, since=since))) == [2, 3, 4]
    assert ns(await aapi.history(HistoryRequest(channel=channel, limit=-1, reverse=True))) == [4, 3, 2, 1]

    await aapi.history_remove(HistoryRemoveRequest(channel=channel))
    after = await aapi.history(HistoryRequest(channel=channel, limit=-1))
    assert (after.publications, after.offset, after.epoch) == ([], 4, epoch)


async def test_async_broadcast_and_batch(aapi):
    a, b = unique("news:async-bc-"), unique("news:async-bc-")
    broadcast = await aapi.broadcast(BroadcastRequest(channels=[a, b, unique("nowhere:")], data={"x": 1}))
    assert [r.result.offset for r in broadcast.responses[:2]] == [1, 1]
    assert broadcast.responses[2].error.code == 102

    batch = await aapi.batch(
        BatchRequest(
            requests=[
                PublishRequest(channel=a, data={"x": 2}),
                HistoryRequest(channel=a, limit=-1),
            ]
        )
    )
    published, history = batch.replies
    assert isinstance(published, PublishResult) and published.offset == 2
    assert isinstance(history, HistoryResult)
    assert [p.data for p in history.publications] == [{"x": 1}, {"x": 2}]


async def test_async_methods_acting_on_a_connected_user(aapi, sdk):
    user = unique("u-")
    channel = unique("news:async-user-")
    client, rec = await sdk(connect_token(user))

    await aapi.subscribe(SubscribeRequest(user=user, channel=channel))
    assert (await rec.next("subscribed")).channel == channel

    presence = await aapi.presence(PresenceRequest(channel=channel))
    assert {cid: info.user for cid, info in presence.presence.items()} == {client.client_id: user}
    stats = await aapi.presence_stats(PresenceStatsRequest(channel=channel))
    assert (stats.num_clients, stats.num_users) == (1, 1)
    channels = await aapi.channels(ChannelsRequest(pattern=channel))
    assert {ch: i.num_clients for ch, i in channels.channels.items()} == {channel: 1}
    info = await aapi.info(InfoRequest())
    assert len(info.nodes) == 1 and info.nodes[0].num_clients >= 1

    await aapi.publish(PublishRequest(channel=channel, data={"hello": "async"}))
    assert (await rec.next("publication")).pub.data == {"hello": "async"}

    await aapi.unsubscribe(UnsubscribeRequest(user=user, channel=channel))
    assert (await rec.next("unsubscribed")).channel == channel

    await aapi.refresh(RefreshRequest(user=user, expired=True))
    assert (await rec.next("connecting")).code == 3005
    await rec.next("connected")

    await aapi.disconnect(DisconnectRequest(user=user, disconnect=Disconnect(code=4502, reason="bye")))
    disconnected = await rec.next("disconnected")
    assert (disconnected.code, disconnected.reason) == (4502, "bye")
    assert client.state == ClientState.DISCONNECTED


async def test_async_errors(gyre, aapi):
    with pytest.raises(CentApiResponseError) as err:
        await aapi.publish(PublishRequest(channel=unique("nowhere:"), data={"x": 1}))
    assert err.value.code == 102
    with pytest.raises(CentApiResponseError) as err:
        await aapi.history(HistoryRequest(channel=unique("plain:"), limit=-1))
    assert err.value.code == 108

    bad = AsyncClient(gyre.api_url, "wrong-key", timeout=TIMEOUT)
    try:
        with pytest.raises(CentUnauthorizedError):
            await bad.publish(PublishRequest(channel=unique("news:"), data={"x": 1}))
    finally:
        await bad.close()
