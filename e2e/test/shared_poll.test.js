'use strict';
// Shared poll subscriptions with the real centrifuge JS SDK (JSON and Protobuf builds)
// against the `gyre` binary, with a real proxy backend (lib/proxy_backend.js) answering
// `shared_poll_refresh` and track signatures made here with Node's crypto as an
// application backend makes them (Centrifugo's `track_signature.go` layout): updates and
// changes within the refresh interval, removal, a wrong signature (103), an expired one
// (109, then getSignature again), re-tracking after a reconnect without duplicate updates,
// versioned mode with `shared_poll_publish` and an epoch change (unsubscribe 2500, then a
// re-track), and the per-connection key limit (106).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const WebSocket = require('ws');

const { FLAVOURS, collect, eventually, once, unique } = require('../lib/harness');
const { token, startGyre } = require('../lib/emulation_server');
const { ProxyBackend } = require('../lib/proxy_backend');

const T = { timeout: 60000 };
const HMAC = 'e2e-shared-poll-hmac-secret';
const REFRESH_MS = 500;

const NAMESPACES = [
  {
    name: 'sp',
    subscription_type: 'shared_poll',
    allow_subscribe_for_client: true,
    shared_poll: { refresh_interval: `${REFRESH_MS}ms`, channel_shutdown_delay: '10s' },
  },
  {
    name: 'spv',
    subscription_type: 'shared_poll',
    allow_subscribe_for_client: true,
    shared_poll: {
      refresh_interval: `${REFRESH_MS}ms`,
      mode: 'versioned',
      publish_enabled: true,
      channel_shutdown_delay: '10s',
    },
  },
  {
    name: 'spl',
    subscription_type: 'shared_poll',
    allow_subscribe_for_client: true,
    shared_poll: { refresh_interval: `${REFRESH_MS}ms`, max_keys_per_connection: 2 },
  },
];

/** A track signature: `iat:exp:hex(hmac_sha256(secret, iat\0exp\0user\0channel\0hex(sha256(keys joined by \0))))`. */
function sign(channel, user, keys, { iat = Math.floor(Date.now() / 1000), exp = iat + 3600, secret = HMAC } = {}) {
  const keysHash = crypto.createHash('sha256').update(keys.join('\0')).digest('hex');
  const payload = `${iat}\0${exp}\0${user}\0${channel}\0${keysHash}`;
  const mac = crypto.createHmac('sha256', secret).update(payload).digest('hex');
  return `${iat}:${exp}:${mac}`;
}

/** The backend's data: per channel an epoch and per key `{data, version}` or `{removed}`. */
class Data {
  constructor() {
    this.channels = new Map();
  }

  channel(name) {
    if (!this.channels.has(name)) this.channels.set(name, { epoch: '', keys: new Map() });
    return this.channels.get(name);
  }

  set(channel, key, data, version) {
    this.channel(channel).keys.set(key, { data, version });
  }

  remove(channel, key) {
    this.channel(channel).keys.set(key, { removed: true });
  }

  /** The `shared_poll_refresh` answer to `request` (HTTP JSON shape). */
  answer(request) {
    const ch = this.channel(request.body.channel);
    const items = [];
    for (const { key } of request.body.items || []) {
      const v = ch.keys.get(key);
      if (!v) continue;
      if (v.removed) items.push({ key, removed: true });
      else items.push(v.version ? { key, data: v.data, version: v.version } : { key, data: v.data });
    }
    return { result: ch.epoch ? { items, epoch: ch.epoch } : { items } };
  }
}

for (const flavour of FLAVOURS) {
  for (const proxyFlavour of flavour.name === 'json' ? ['http', 'grpc'] : ['http']) {
    describe(`shared poll, ${flavour.name} SDK, ${proxyFlavour} refresh proxy`, () => {
      let gyre;
      let backend;
      const data = new Data();
      const clients = [];

      /** A connected client of `user` with a shared poll subscription to `channel`. */
      function subscription(channel, user, { getSignature, ...options } = {}) {
        const sockets = [];
        const c = new flavour.Centrifuge(`${gyre.base.replace('http', 'ws')}/connection/websocket`, {
          token: token(user),
          websocket: class extends WebSocket {
            constructor(...args) {
              super(...args);
              sockets.push(this);
            }
          },
          minReconnectDelay: 200,
          maxReconnectDelay: 400,
        });
        c.sockets = sockets;
        clients.push(c);
        const signatures = [];
        const sub = c.newSharedPollSubscription(channel, {
          getSignature:
            getSignature ||
            (async ({ keys }) => {
              signatures.push(keys);
              return { keys, signature: sign(channel, user, keys) };
            }),
          ...options,
        });
        sub.signatures = signatures;
        sub.updates = collect(sub, 'update');
        sub.errors = collect(sub, 'error');
        sub.subscribe();
        c.connect();
        return { c, sub };
      }

      const value = (ctx) => (ctx.removed ? null : flavour.decode(ctx.data));

      before(async () => {
        backend = await new ProxyBackend().start();
        backend.answer('shared_poll_refresh', (request) => data.answer(request));
        gyre = await startGyre('http://127.0.0.1:9/rpc', {
          channel: {
            namespaces: NAMESPACES,
            proxy: { shared_poll_refresh: { endpoint: backend.endpoint(proxyFlavour, 'shared_poll_refresh'), timeout: '3s' } },
          },
          shared_poll: { hmac_secret_key: HMAC },
        });
      });
      after(async () => {
        for (const c of clients) c.disconnect();
        if (gyre) await gyre.stop();
        if (backend) await backend.stop();
      });

      it('delivers tracked keys and their changes within the refresh interval, then a removal', T, async () => {
        const channel = unique('sp:prices');
        data.set(channel, 'a', { p: 1 });
        data.set(channel, 'b', { p: 2 });
        const { sub } = subscription(channel, unique('u'));
        await once(sub, 'subscribed');
        sub.track(['a', 'b']);
        const first = await sub.updates.until(2);
        const byKey = Object.fromEntries(first.map((u) => [u.key, u]));
        assert.deepEqual(value(byKey.a), { p: 1 });
        assert.deepEqual(value(byKey.b), { p: 2 });
        assert.ok(byKey.a.version > 0, JSON.stringify(byKey.a));
        // The backend saw both keys in one refresh request.
        const asked = backend.requests('shared_poll_refresh', channel);
        assert.ok(asked.some((r) => r.body.items.map((i) => i.key).sort().join() === 'a,b'), JSON.stringify(asked.map((r) => r.body)));

        // Unchanged data makes no update.
        await new Promise((r) => setTimeout(r, REFRESH_MS * 2.5));
        assert.equal(sub.updates.length, 2, JSON.stringify(sub.updates));

        const changedAt = Date.now();
        data.set(channel, 'a', { p: 3 });
        await sub.updates.until(3, REFRESH_MS * 4);
        assert.ok(Date.now() - changedAt <= REFRESH_MS * 2 + 300, `seen after ${Date.now() - changedAt} ms`);
        const change = sub.updates[2];
        assert.equal(change.key, 'a');
        assert.deepEqual(value(change), { p: 3 });
        assert.ok(change.version > byKey.a.version);

        data.remove(channel, 'b');
        await sub.updates.until(4, REFRESH_MS * 4);
        const removal = sub.updates[3];
        assert.equal(removal.key, 'b');
        assert.equal(removal.removed, true);
        await eventually(() => !sub.trackedKeys().has('b'), 2000, 'b untracked');
        assert.ok(sub.trackedKeys().has('a'));
      });

      it('refuses a wrong signature with 103 and an expired one with 109, then asks getSignature again', T, async () => {
        const channel = unique('sp:sig');
        const user = unique('u');
        data.set(channel, 'k', { v: 1 });
        const { sub } = subscription(channel, user);
        await once(sub, 'subscribed');

        sub.track([{ key: 'k', version: 0 }], sign(channel, user, ['k'], { secret: 'wrong' }));
        const wrong = await sub.errors.until(1);
        assert.equal(wrong[0].type, 'track');
        assert.equal(wrong[0].error.code, 103);
        // A signature for another user is refused the same way.
        sub.track([{ key: 'k', version: 0 }], sign(channel, 'someone-else', ['k']));
        await sub.errors.until(2);
        assert.equal(sub.errors[1].error.code, 103);
        // (The SDK reports the refused keys as removed.)
        assert.equal(sub.updates.filter((u) => !u.removed).length, 0);

        // Expired past the 5 s grace: 109, then the SDK gets a fresh signature.
        const now = Math.floor(Date.now() / 1000);
        let calls = 0;
        const { sub: sub2 } = subscription(channel, user, {
          getSignature: async ({ keys }) => {
            calls += 1;
            const opts = calls === 1 ? { iat: now - 120, exp: now - 60 } : {};
            return { keys, signature: sign(channel, user, keys, opts) };
          },
        });
        await once(sub2, 'subscribed');
        sub2.track(['k']);
        const expired = await sub2.errors.until(1);
        assert.equal(expired[0].error.code, 109, JSON.stringify(expired[0]));
        const update = await sub2.updates.until(1, 10000);
        assert.deepEqual(value(update[0]), { v: 1 });
        assert.ok(calls >= 2, `getSignature called ${calls} times`);
      });

      it('re-tracks after a reconnect without duplicate updates', T, async () => {
        const channel = unique('sp:re');
        data.set(channel, 'x', { n: 1 });
        const { c, sub } = subscription(channel, unique('u'));
        await once(sub, 'subscribed');
        sub.track(['x']);
        await sub.updates.until(1);
        const signaturesBefore = sub.signatures.length;

        const resubscribed = once(sub, 'subscribed', { timeoutMs: 10000 });
        c.sockets.at(-1).terminate();
        await resubscribed;
        // Unchanged data: nothing new after the replayed track and two refreshes.
        await new Promise((r) => setTimeout(r, REFRESH_MS * 3));
        assert.equal(sub.updates.length, 1, JSON.stringify(sub.updates));
        // The cached signature was replayed: no new getSignature call.
        assert.equal(sub.signatures.length, signaturesBefore);
        // Changes still arrive, once.
        data.set(channel, 'x', { n: 2 });
        await sub.updates.until(2, REFRESH_MS * 4);
        await new Promise((r) => setTimeout(r, REFRESH_MS * 2));
        assert.equal(sub.updates.length, 2);
        assert.deepEqual(value(sub.updates[1]), { n: 2 });
      });

      it('versioned: shared_poll_publish delivers, an epoch change unsubscribes with 2500 and re-tracks', T, async () => {
        const channel = unique('spv:v');
        data.channel(channel).epoch = 'e1';
        data.set(channel, 'k', { v: 1 }, 5);
        // A first tracker makes the node learn the epoch, so the next subscriber is told
        // it (before that the epoch is empty).
        const { sub: warm } = subscription(channel, unique('u'));
        await once(warm, 'subscribed');
        warm.track(['k']);
        await warm.updates.until(1);
        const { sub } = subscription(channel, unique('u'));
        const unsubscribes = collect(sub, 'subscribing');
        await once(sub, 'subscribed');
        sub.track(['k']);
        const first = await sub.updates.until(1);
        assert.equal(first[0].version, 5);

        await gyre.api('shared_poll_publish', { channel, key: 'k', data: { v: 2 }, version: 7, epoch: 'e1' });
        await sub.updates.until(2);
        assert.equal(sub.updates[1].version, 7);
        assert.deepEqual(value(sub.updates[1]), { v: 2 });
        // An older version is ignored.
        await gyre.api('shared_poll_publish', { channel, key: 'k', data: { v: 0 }, version: 6, epoch: 'e1' });
        // Bad requests.
        await assert.rejects(gyre.api('shared_poll_publish', { channel, key: 'k', data: {}, version: 0 }), /107/);
        await assert.rejects(gyre.api('shared_poll_publish', { channel: unique('sp:x'), key: 'k', data: {}, version: 1 }), /108/);

        // The backend moves to a new epoch with lower versions: every tracker is told
        // 2500, resubscribes, sees the new epoch and tracks again from 0.
        data.channel(channel).epoch = 'e2';
        data.set(channel, 'k', { v: 10 }, 1);
        await eventually(() => unsubscribes.some((u) => u.code === 2500), REFRESH_MS * 8, 'unsubscribe 2500');
        await eventually(() => sub.updates.some((u) => u.version === 1), 10000, 'update of the new epoch');
        const last = sub.updates.find((u) => u.version === 1);
        assert.deepEqual(value(last), { v: 10 });
        assert.ok(!sub.updates.some((u) => u.version === 6), 'the older publish was dropped');
      });

      it('refuses more keys than max_keys_per_connection with 106', T, async () => {
        const channel = unique('spl:l');
        for (const k of ['a', 'b', 'c']) data.set(channel, k, { k });
        const { sub } = subscription(channel, unique('u'));
        await once(sub, 'subscribed');
        sub.track(['a', 'b', 'c']);
        const errors = await sub.errors.until(1);
        assert.equal(errors[0].type, 'track');
        assert.equal(errors[0].error.code, 106);
        await eventually(() => sub.trackedKeys().size === 0, 2000, 'keys untracked after 106');
        sub.track(['a', 'b']);
        await sub.updates.until(2);
      });
    });
  }
}
