"""cent's synchronous `Client` against Gyre's HTTP server API: the methods that need no
connected client (publish, history, history_remove, broadcast, batch, presence and
channels of empty channels) and the error paths."""

import pytest
from cent import (
    BatchRequest,
    BlockUserRequest,
    CentTransportError,
    ConnectionsRequest,
    GetUserStatusRequest,
    RevokeTokenRequest,
    UpdateUserStatusRequest,
    BroadcastRequest,
    CentApiResponseError,
    CentUnauthorizedError,
    ChannelsRequest,
    Client,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    StreamPosition,
)
from cent.dto import BatchResult, HistoryResult, PublishResult

from gyre_compat import API_KEY, TIMEOUT, requests_session, unique


def publish_n(api: Client, channel: str, n: int):
    return [api.publish(PublishRequest(channel=channel, data={"n": i})) for i in range(1, n + 1)]


def ns(result: HistoryResult):
    return [p.data["n"] for p in result.publications]


def offsets(result: HistoryResult):
    return [p.offset for p in result.publications]


def test_publish_into_history_channel_returns_stream_position(api):
    channel = unique("news:pub-")
    first = api.publish(PublishRequest(channel=channel, data={"text": "one"}))
    assert isinstance(first, PublishResult)
    assert first.offset == 1
    assert isinstance(first.epoch, str) and first.epoch != ""
    second = api.publish(PublishRequest(channel=channel, data={"text": "two"}))
    assert (second.offset, second.epoch) == (2, first.epoch)

    # Another channel has a stream of its own.
    other = api.publish(PublishRequest(channel=unique("news:pub-"), data={"text": "x"}))
    assert other.offset == 1


def test_publish_without_history_has_no_position(api):
    result = api.publish(PublishRequest(channel=unique("plain:"), data={"text": "hi"}))
    assert (result.offset, result.epoch) == (0, "")


def test_publish_skip_history_and_idempotency_key(api):
    channel = unique("news:opts-")
    stored = api.publish(PublishRequest(channel=channel, data={"n": 1}))
    skipped = api.publish(PublishRequest(channel=channel, data={"n": 2}, skip_history=True))
    assert skipped.offset == 0
    top = api.history(HistoryRequest(channel=channel, limit=-1))
    assert ns(top) == [1]
    assert (top.offset, top.epoch) == (1, stored.epoch)

    once = api.publish(PublishRequest(channel=channel, data={"n": 3}, idempotency_key="k1"))
    again = api.publish(PublishRequest(channel=channel, data={"n": 3}, idempotency_key="k1"))
    assert once.offset == 2
    assert (again.offset, again.epoch) == (once.offset, once.epoch)
    assert ns(api.history(HistoryRequest(channel=channel, limit=-1))) == [1, 3]


def test_history_limit_since_reverse(api):
    channel = unique("news:hist-")
    results = publish_n(api, channel, 5)
    epoch = results[0].epoch
    assert [r.offset for r in results] == [1, 2, 3, 4, 5]

    # No limit: only the stream position.
    position = api.history(HistoryRequest(channel=channel))
    assert position.publications == []
    assert (position.offset, position.epoch) == (5, epoch)

    everything = api.history(HistoryRequest(channel=channel, limit=-1))
    assert ns(everything) == [1, 2, 3, 4, 5]
    assert offsets(everything) == [1, 2, 3, 4, 5]
    assert (everything.offset, everything.epoch) == (5, epoch)

    assert ns(api.history(HistoryRequest(channel=channel, limit=2))) == [1, 2]

    since = StreamPosition(offset=2, epoch=epoch)
    assert ns(api.history(HistoryRequest(channel=channel, limit=-1, since=since))) == [3, 4, 5]
    assert ns(api.history(HistoryRequest(channel=channel, limit=2, since=since))) == [3, 4]
    at_top = api.history(HistoryRequest(channel=channel, limit=-1, since=StreamPosition(offset=5, epoch=epoch)))
    assert (at_top.publications, at_top.offset) == ([], 5)

    assert ns(api.history(HistoryRequest(channel=channel, limit=-1, reverse=True))) == [5, 4, 3, 2, 1]
    assert ns(api.history(HistoryRequest(channel=channel, limit=2, reverse=True))) == [5, 4]
    before_four = HistoryRequest(
        channel=channel, limit=-1, reverse=True, since=StreamPosition(offset=4, epoch=epoch)
    )
    assert ns(api.history(before_four)) == [3, 2, 1]

    with pytest.raises(CentApiResponseError) as err:
        api.history(HistoryRequest(channel=channel, limit=-1, since=StreamPosition(offset=1, epoch="not-the-epoch")))
    assert err.value.code == 112


def test_history_of_empty_channel_and_errors(api):
    empty = api.history(HistoryRequest(channel=unique("news:empty-"), limit=-1))
    assert empty.publications == []
    assert empty.offset == 0

    with pytest.raises(CentApiResponseError) as err:
        api.history(HistoryRequest(channel=unique("plain:"), limit=-1))
    assert err.value.code == 108  # history is off in `plain`
    with pytest.raises(CentApiResponseError) as err:
        api.history(HistoryRequest(channel=unique("nowhere:"), limit=-1))
    assert err.value.code == 102


def test_history_remove_keeps_the_stream_position(api):
    channel = unique("news:remove-")
    results = publish_n(api, channel, 3)
    epoch = results[0].epoch
    removed = api.history_remove(HistoryRemoveRequest(channel=channel))
    assert removed.model_dump() == {}

    after = api.history(HistoryRequest(channel=channel, limit=-1))
    assert after.publications == []
    assert (after.offset, after.epoch) == (3, epoch)
    next_one = api.publish(PublishRequest(channel=channel, data={"n": 4}))
    assert (next_one.offset, next_one.epoch) == (4, epoch)
    assert ns(api.history(HistoryRequest(channel=channel, limit=-1))) == [4]


def test_broadcast_answers_per_channel(api):
    a, b = unique("news:bc-"), unique("plain:bc-")
    unknown = unique("nowhere:")
    result = api.broadcast(BroadcastRequest(channels=[a, b, unknown], data={"text": "all"}))
    assert len(result.responses) == 3
    first, second, third = result.responses
    assert first.error is None and first.result.offset == 1 and first.result.epoch != ""
    assert second.error is None and (second.result.offset, second.result.epoch) == (0, "")
    assert third.error is not None and third.error.code == 102
    history = api.history(HistoryRequest(channel=a, limit=-1))
    assert [p.data for p in history.publications] == [{"text": "all"}]


def test_batch_sequential_and_parallel(api):
    channel = unique("news:batch-")
    result = api.batch(
        BatchRequest(
            requests=[
                PublishRequest(channel=channel, data={"n": 1}),
                PublishRequest(channel=channel, data={"n": 2}),
                HistoryRequest(channel=channel, limit=-1),
                PresenceStatsRequest(channel=channel),
            ]
        )
    )
    assert isinstance(result, BatchResult)
    assert len(result.replies) == 4
    first, second, history, stats = result.replies
    assert isinstance(first, PublishResult) and first.offset == 1
    assert isinstance(second, PublishResult) and (second.offset, second.epoch) == (2, first.epoch)
    assert isinstance(history, HistoryResult) and ns(history) == [1, 2]
    assert (stats.num_clients, stats.num_users) == (0, 0)

    channels = [unique("news:batch-p-") for _ in range(3)]
    parallel = api.batch(
        BatchRequest(requests=[PublishRequest(channel=c, data={"c": c}) for c in channels], parallel=True)
    )
    assert [r.offset for r in parallel.replies] == [1, 1, 1]
    for c in channels:
        assert [p.data for p in api.history(HistoryRequest(channel=c, limit=-1)).publications] == [{"c": c}]


def test_presence_of_an_empty_channel(api):
    # Centrifugo always writes `presence` (an empty object here) and both counters.
    channel = unique("news:nobody-")
    assert api.presence(PresenceRequest(channel=channel)).presence == {}
    stats = api.presence_stats(PresenceStatsRequest(channel=channel))
    assert (stats.num_clients, stats.num_users) == (0, 0)


def test_channels_without_a_match(api):
    # Centrifugo always writes `channels` (an empty object here).
    assert api.channels(ChannelsRequest(pattern=unique("news:nobody-"))).channels == {}


def test_presence_in_namespace_without_presence_is_108(api):
    with pytest.raises(CentApiResponseError) as err:
        api.presence(PresenceRequest(channel=unique("plain:")))
    assert err.value.code == 108
    with pytest.raises(CentApiResponseError) as err:
        api.presence_stats(PresenceStatsRequest(channel=unique("plain:")))
    assert err.value.code == 108


def test_unknown_namespace_is_api_error_102(api):
    with pytest.raises(CentApiResponseError) as err:
        api.publish(PublishRequest(channel=unique("nowhere:"), data={"text": "x"}))
    assert err.value.code == 102
    assert err.value.message == "unknown channel"


def test_bad_api_key_is_unauthorized(gyre):
    for key in ("wrong-key", ""):
        with Client(gyre.api_url, key, timeout=TIMEOUT, session=requests_session()) as bad:
            with pytest.raises(CentUnauthorizedError):
                bad.publish(PublishRequest(channel=unique("news:"), data={"text": "x"}))
            with pytest.raises(CentUnauthorizedError):
                bad.info(InfoRequest())
    # The right key still works.
    with Client(gyre.api_url, API_KEY, timeout=TIMEOUT, session=requests_session()) as good:
        assert len(good.info(InfoRequest()).nodes) == 1


def test_pro_only_methods_are_not_routed(api):
    # cent also speaks Centrifugo PRO's API; OSS Centrifugo routes none of these paths
    # under /api/, so the answer is HTTP 404 (CentTransportError), API key or not.
    calls = [
        (api.connections, ConnectionsRequest(user="u", expression="")),
        (api.update_user_status, UpdateUserStatusRequest(users=["u"])),
        (api.get_user_status, GetUserStatusRequest(users=["u"])),
        (api.block_user, BlockUserRequest(user="u")),
        (api.revoke_token, RevokeTokenRequest(uid="x")),
    ]
    for method, request in calls:
        with pytest.raises(CentTransportError) as err:
            method(request)
        assert err.value.status_code == 404, request.api_method
