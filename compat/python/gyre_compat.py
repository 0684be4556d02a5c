"""Shared pieces of the Python client compatibility suite: the server configuration,
tokens, an event recorder for centrifuge-python and a few helpers.

Every wait is bounded (`TIMEOUT`); a test that waits for an event that never comes fails
with the list of events that did come.
"""

import asyncio
import time
import uuid
from typing import Any, Callable, List, Optional, Tuple

import jwt
import requests
from centrifuge import Client, ClientEventHandler, SubscriptionEventHandler

# How long a test waits for one thing to happen (an event, a reply).
TIMEOUT = 5.0

# `client.token.hmac_secret_key` and `http_api.key` of `server_config()`.
SECRET = "pycompat-hmac-secret-0123456789abcdef"
API_KEY = "pycompat-api-key"


def server_config() -> dict:
    """The Centrifugo v6 configuration every test server runs with.

    * `news`: stream channels with history (100 × 300 s), recovery and positioning
      allowed, presence and join/leave; any authenticated client may subscribe,
      subscribers may publish and read presence and history.
    * `plain`: any client may subscribe; no history, no presence, no client publish.
    * `secret`: nothing allowed to clients: used as `$secret:...` with subscription
      tokens; history 10 × 300 s and presence, readable by subscribers.
    * `forced`: `force_recovery` with history 100 × 300 s, for server-side
      subscriptions from the connection token's `channels` claim.
    * `rpc.ping`: the built-in `ping` RPC method.
    * `client.expired_close_delay` 1 s, so a connection that is not refreshed in time
      is closed within a test's time.
    """
    return {
        "log": {"level": "info"},
        "health": {"enabled": True},
        "http_api": {"key": API_KEY},
        "client": {
            "token": {"hmac_secret_key": SECRET},
            "allowed_origins": ["*"],
            "expired_close_delay": "1s",
        },
        "rpc": {"ping": {"enabled": True}},
        "channel": {
            "without_namespace": {"allow_subscribe_for_client": True},
            "namespaces": [
                {
                    "name": "news",
                    "allow_subscribe_for_client": True,
                    "allow_publish_for_subscriber": True,
                    "presence": True,
                    "join_leave": True,
                    "allow_presence_for_subscriber": True,
                    "allow_history_for_subscriber": True,
                    "history_size": 100,
                    "history_ttl": "300s",
                    "allow_recovery": True,
                    "allow_positioning": True,
                },
                {"name": "plain", "allow_subscribe_for_client": True},
                {
                    "name": "secret",
                    "presence": True,
                    "allow_presence_for_subscriber": True,
                    "history_size": 10,
                    "history_ttl": "300s",
                    "allow_history_for_subscriber": True,
                },
                {
                    "name": "forced",
                    "force_recovery": True,
                    "history_size": 100,
                    "history_ttl": "300s",
                },
            ],
        },
    }


async def blocking(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Runs a blocking call (cent's synchronous Client) off the event loop, so the
    centrifuge-python clients of the test keep reading meanwhile."""
    return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), timeout=2 * TIMEOUT)


def requests_session() -> requests.Session:
    """A requests session for cent's Client that ignores proxy variables (127.0.0.1)."""
    session = requests.Session()
    session.trust_env = False
    return session


def unique(prefix: str) -> str:
    """`prefix` followed by a random suffix: channels and users no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def connect_token(user: str, ttl: Optional[int] = 3600, **claims: Any) -> str:
    """An HS256 connection JWT for `user`; `ttl` None leaves `exp` out."""
    payload: dict = {"sub": user}
    if ttl is not None:
        payload["exp"] = int(time.time()) + ttl
    payload.update(claims)
    return jwt.encode(payload, SECRET, algorithm="HS256")


def sub_token(user: str, channel: str, ttl: int = 3600, **claims: Any) -> str:
    """An HS256 subscription JWT for `user` and `channel`."""
    payload = {"sub": user, "channel": channel, "exp": int(time.time()) + ttl}
    payload.update(claims)
    return jwt.encode(payload, SECRET, algorithm="HS256")


class Recorder(ClientEventHandler, SubscriptionEventHandler):
    """Records every event of a client or a subscription, in order.

    `await rec.next("publication")` returns the context of the next event of that kind
    not taken yet (waiting up to TIMEOUT); events of other kinds stay where they are.
    `hold(kind)` makes the handler of that kind block until `release(kind)`: the SDK
    awaits its handlers, so holding `connecting` keeps a client away until released.
    """

    KINDS = (
        "connecting",
        "connected",
        "disconnected",
        "error",
        "subscribing",
        "subscribed",
        "unsubscribed",
        "publication",
        "join",
        "leave",
    )

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.events: List[Tuple[str, Any]] = []
        self._taken: List[bool] = []
        self._changed = asyncio.Event()
        self._holds: dict = {}

    def hold(self, kind: str) -> None:
        self._holds[kind] = asyncio.Event()

    def release(self, kind: str) -> None:
        event = self._holds.pop(kind, None)
        if event is not None:
            event.set()

    async def _record(self, kind: str, ctx: Any) -> None:
        self.events.append((kind, ctx))
        self._taken.append(False)
        self._changed.set()
        held = self._holds.get(kind)
        if held is not None:
            await asyncio.wait_for(held.wait(), timeout=4 * TIMEOUT)

    def kinds(self) -> List[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> List[Any]:
        """Every context of that kind recorded so far (taken or not)."""
        return [ctx for k, ctx in self.events if k == kind]

    async def next(
        self,
        kind: str,
        where: Optional[Callable[[Any], bool]] = None,
        timeout: float = TIMEOUT,
    ) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, (k, ctx) in enumerate(self.events):
                if not self._taken[i] and k == kind and (where is None or where(ctx)):
                    self._taken[i] = True
                    return ctx
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name or 'recorder'}: no '{kind}' event within {timeout}s; "
                    f"got {self.events!r}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                pass

    async def publications(self, n: int, timeout: float = TIMEOUT) -> List[Any]:
        """The next `n` publication contexts."""
        return [await self.next("publication", timeout=timeout) for _ in range(n)]

    async def quiet(self, kind: str, seconds: float) -> bool:
        """Whether no new event of that kind arrives within `seconds`."""
        await asyncio.sleep(seconds)
        return not any(
            k == kind and not self._taken[i] for i, (k, _) in enumerate(self.events)
        )

    # ClientEventHandler and SubscriptionEventHandler callbacks (the same names carry
    # the server-side subscription contexts on a client recorder).
    async def on_connecting(self, ctx):
        await self._record("connecting", ctx)

    async def on_connected(self, ctx):
        await self._record("connected", ctx)

    async def on_disconnected(self, ctx):
        await self._record("disconnected", ctx)

    async def on_error(self, ctx):
        await self._record("error", ctx)

    async def on_subscribing(self, ctx):
        await self._record("subscribing", ctx)

    async def on_subscribed(self, ctx):
        await self._record("subscribed", ctx)

    async def on_unsubscribed(self, ctx):
        await self._record("unsubscribed", ctx)

    async def on_publication(self, ctx):
        await self._record("publication", ctx)

    async def on_join(self, ctx):
        await self._record("join", ctx)

    async def on_leave(self, ctx):
        await self._record("leave", ctx)


def new_client(ws_url: str, rec: Recorder, **kwargs: Any) -> Client:
    """A centrifuge-python client with bounded timeouts, fast reconnects and no proxy
    from the environment."""
    options = dict(
        events=rec,
        timeout=TIMEOUT,
        min_reconnect_delay=0.05,
        max_reconnect_delay=0.5,
        proxy=None,
    )
    options.update(kwargs)
    return Client(ws_url, **options)
