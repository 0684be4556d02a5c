'use strict';
// Client map changes decided by the application backend, with the real centrifuge JS SDK
// against the `gyre` binary (memory map broker): the map_publish and map_remove proxies
// (http:// and grpc:// endpoints of lib/proxy_backend.js) allow, rewrite and reject a
// client's `sub.publish`/`sub.remove`; `map.remove_client_on_unsubscribe` removes a
// client's own key when it unsubscribes or disconnects; presence on a map namespace; and
// the protocol's errors for bad map changes.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');

const { collect, eventually, once, unique } = require('../lib/harness');
const { token, startGyre } = require('../lib/emulation_server');
const { ProxyBackend } = require('../lib/proxy_backend');

const T = { timeout: 60000 };

function namespaces(proxied = false) {
  const all = [
    {
      name: 'mx',
      subscription_type: 'map',
      allow_subscribe_for_client: true,
      map: {
        mode: 'recoverable',
        key_ttl: '60s',
        publish_proxy_enabled: true,
        remove_proxy_enabled: true,
      },
    },
    {
      name: 'cur',
      subscription_type: 'map',
      allow_subscribe_for_client: true,
      presence: true,
      join_leave: true,
      force_push_join_leave: true,
      allow_presence_for_subscriber: true,
      map: {
        mode: 'ephemeral',
        key_ttl: '60s',
        client_key: 'client_id',
        allow_publish_for_subscriber: true,
        remove_client_on_unsubscribe: true,
      },
    },
    {
      name: 'mk',
      subscription_type: 'map',
      allow_subscribe_for_client: true,
      map: {
        mode: 'ephemeral',
        key_ttl: '60s',
        allow_publish_for_subscriber: true,
        allow_remove_for_subscriber: true,
      },
    },
  ];
  // The proxied namespace needs the proxies' endpoints.
  return proxied ? all : all.filter((ns) => ns.name !== 'mx');
}

function sdkClient(gyre, user) {
  return new Centrifuge(`${gyre.base.replace('http', 'ws')}/connection/websocket`, {
    token: token(user || unique('mx-user')),
    websocket: WebSocket,
    minReconnectDelay: 300,
    maxReconnectDelay: 600,
  });
}

/** Connects `c` and subscribes `sub`; resolves once the map is live (first `subscribed`). */
async function live(c, sub) {
  const ready = once(sub, 'subscribed', { timeoutMs: 10000 });
  c.connect();
  sub.subscribe();
  return ready;
}

async function rejected(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

for (const proxyFlavour of ['http', 'grpc']) {
  describe(`map proxies over ${proxyFlavour}`, () => {
    let backend;
    let gyre;
    const clients = [];
    before(async () => {
      backend = await new ProxyBackend().start();
      const endpoint = (event) => ({ endpoint: backend.endpoint(proxyFlavour, event), timeout: '3s' });
      gyre = await startGyre('http://127.0.0.1:9/rpc', {
        channel: {
          proxy: { map_publish: endpoint('map_publish'), map_remove: endpoint('map_remove') },
          namespaces: namespaces(true),
        },
      });
      backend.answer('map_publish', ({ body }) => {
        if (body.key === 'bad') return { error: { code: 1001, message: 'rejected' } };
        if (body.key === 'kick') return { disconnect: { code: 4501, reason: 'kicked' } };
        if (body.key === 'rename') {
          return { result: { key: 'renamed', data: { from: body.data, by: 'backend' } } };
        }
        if (body.key === 'once') return { result: { key_mode: 'if_new' } };
        return { result: {} };
      });
      backend.answer('map_remove', ({ body }) => {
        if (body.key === 'keep') return { error: { code: 1002, message: 'keep it' } };
        if (body.key === 'alias') return { result: { key: 'renamed' } };
        return {};
      });
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      if (gyre) await gyre.stop();
      if (backend) await backend.stop();
    });

    it('allows, rewrites and rejects client map publications and removals', T, async () => {
      const channel = unique('mx:board');
      const user = unique('writer');
      const writer = sdkClient(gyre, user);
      const watcher = sdkClient(gyre);
      clients.push(writer, watcher);
      // The channel exists before the watcher subscribes (see the report: a first change
      // of a channel created after a subscriber went live was once missed).
      await gyre.api('map_publish', { channel, key: 'seed', data: {} });
      await gyre.api('map_remove', { channel, key: 'seed' });
      const wsub = watcher.newMapSubscription(channel);
      await live(watcher, wsub);
      const updates = collect(wsub, 'update');
      const sub = writer.newMapSubscription(channel);
      await live(writer, sub);

      await sub.publish('k1', { v: 1 });
      const bad = await rejected(sub.publish('bad', { v: 0 }));
      assert.equal(bad.code, 1001);
      assert.equal(bad.message, 'rejected');
      await sub.publish('rename', { v: 2 });
      await sub.publish('once', { v: 3 });
      // `if_new` from the backend: the second change of an existing key is suppressed.
      await sub.publish('once', { v: 4 });
      const keep = await rejected(sub.remove('keep'));
      assert.equal(keep.code, 1002);
      await sub.remove('alias');
      await sub.remove('k1');
      await updates.until(5).catch((e) => { throw new Error(e.message + ' ' + JSON.stringify(updates)); });
      assert.deepEqual(
        updates.map((u) => [u.key, u.removed === true, u.removed ? null : u.data]),
        [
          ['k1', false, { v: 1 }],
          ['renamed', false, { from: { v: 2 }, by: 'backend' }],
          ['once', false, { v: 3 }],
          ['renamed', true, null],
          ['k1', true, null],
        ],
      );
      assert.ok(updates[0].info && updates[0].info.user === user, 'the publisher is attached');
      const state = await gyre.api('map_read_state', { channel, limit: -1 });
      assert.deepEqual(
        state.entries.map((e) => [e.key, e.data]),
        [['once', { v: 3 }]],
      );

      const published = backend.requests('map_publish', channel);
      assert.deepEqual(
        published.map((r) => r.body.key),
        ['k1', 'bad', 'rename', 'once', 'once'],
      );
      assert.equal(published[0].flavour, proxyFlavour);
      assert.equal(published[0].body.user, user);
      assert.deepEqual(published[0].body.data, { v: 1 });
      assert.ok(published[0].body.client, 'the client id is sent');
      const removed = backend.requests('map_remove', channel);
      assert.deepEqual(
        removed.map((r) => [r.body.key, r.body.user]),
        [
          ['keep', user],
          ['alias', user],
          ['k1', user],
        ],
      );

      // A disconnect from the backend closes the writer's connection with its code.
      const closed = once(writer, 'disconnected', { timeoutMs: 10000 });
      sub.publish('kick', {}).catch(() => {});
      const ctx = await closed;
      assert.equal(ctx.code, 4501);
      const after = await gyre.api('map_read_state', { channel, limit: -1 });
      assert.deepEqual(after.entries.map((e) => e.key), ['once'], 'nothing written for kick');
    });
  });
}

describe('map.remove_client_on_unsubscribe and presence on a map namespace', () => {
  let gyre;
  const clients = [];
  before(async () => {
    gyre = await startGyre('http://127.0.0.1:9/rpc', { channel: { namespaces: namespaces() } });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    if (gyre) await gyre.stop();
  });

  it('removes the client key another client sees on unsubscribe and on disconnect', T, async () => {
    const channel = unique('cur:doc');
    const watcher = sdkClient(gyre);
    const mover = sdkClient(gyre);
    clients.push(watcher, mover);
    const wsub = watcher.newMapSubscription(channel);
    await live(watcher, wsub);
    const updates = collect(wsub, 'update');
    const joins = collect(wsub, 'join');
    const leaves = collect(wsub, 'leave');

    const connected = once(mover, 'connected', { timeoutMs: 10000 });
    const sub = mover.newMapSubscription(channel);
    await live(mover, sub);
    const { client: moverId } = await connected;
    // `client_key: client_id`: whatever key the client names, its entry is its id.
    await sub.publish('ignored', { x: 1 });
    await updates.until(1);
    assert.deepEqual([updates[0].key, updates[0].data], [moverId, { x: 1 }]);

    // Presence and join/leave work on the map namespace.
    const presence = await wsub.presence();
    assert.ok(Object.keys(presence.clients).includes(moverId), JSON.stringify(presence));
    await eventually(() => joins.some((j) => j.info.client === moverId), 5000, 'join of the mover');

    sub.unsubscribe();
    await updates.until(2);
    assert.deepEqual([updates[1].key, updates[1].removed], [moverId, true]);
    await eventually(() => leaves.some((l) => l.info.client === moverId), 5000, 'leave of the mover');
    let state = await gyre.api('map_read_state', { channel, limit: -1 });
    assert.equal((state.entries || []).length, 0);

    // Subscribed again, then the connection goes away: the key goes too.
    await live(mover, sub);
    await sub.publish('ignored', { x: 2 });
    await updates.until(3);
    assert.equal(updates[2].key, moverId);
    mover.disconnect();
    await updates.until(4);
    assert.deepEqual([updates[3].key, updates[3].removed], [moverId, true]);
    state = await gyre.api('map_read_state', { channel, limit: -1 });
    assert.equal((state.entries || []).length, 0);
    const left = await wsub.presence();
    assert.ok(!Object.keys(left.clients).includes(moverId), 'presence entry removed');
  });
});

/** Raw JSON protocol connection: `call(command)` resolves with the reply of that id. */
async function rawConnection(gyre, onClose) {
  const ws = new WebSocket(`${gyre.base.replace('http', 'ws')}/connection/websocket`);
  await once(ws, 'open');
  if (onClose) ws.on('close', onClose);
  let id = 0;
  const pending = new Map();
  ws.on('message', (data) => {
    for (const line of data.toString().split('\n')) {
      if (!line) continue;
      const reply = JSON.parse(line);
      if (reply.id && pending.has(reply.id)) {
        pending.get(reply.id)(reply);
        pending.delete(reply.id);
      }
    }
  });
  const call = (command) =>
    new Promise((resolve, reject) => {
      id += 1;
      pending.set(id, resolve);
      setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(command)}`)), 5000);
      ws.send(JSON.stringify({ id, ...command }));
    });
  const connected = await call({ connect: { token: token(unique('raw')) } });
  assert.ok(connected.connect, JSON.stringify(connected));
  return { ws, call, close: () => ws.close() };
}

describe('map changes, bad input', () => {
  let gyre;
  before(async () => {
    gyre = await startGyre('http://127.0.0.1:9/rpc', { channel: { namespaces: namespaces() } });
  });
  after(async () => {
    if (gyre) await gyre.stop();
  });

  it('answers with the protocol codes', T, async () => {
    const conn = await rawConnection(gyre);
    const live = await conn.call({ subscribe: { channel: 'mk:x', type: 1, phase: 0 } });
    assert.ok(live.subscribe, JSON.stringify(live));
    const code = async (publish) => {
      const reply = await conn.call({ publish });
      return reply.error ? reply.error.code : 0;
    };
    assert.equal(await code({ channel: 'mk:x', type: 1, key: 'k', data: { a: 1 } }), 0, 'allowed');
    assert.equal(await code({ channel: 'mk:x', type: 1, data: { a: 1 } }), 107, 'no key');
    assert.equal(await code({ channel: 'mk:x', type: 1, removed: true }), 107, 'remove without key');
    assert.equal(await code({ channel: 'nope:x', type: 1, key: 'k', data: {} }), 102, 'unknown namespace');
    assert.equal(await code({ channel: 'mk:y', type: 1, key: 'k', data: {} }), 103, 'not subscribed');
    assert.equal(await code({ channel: 'mk:y', type: 1, key: 'k', removed: true }), 103, 'remove, not subscribed');
    assert.equal(await code({ channel: `mk:${'x'.repeat(300)}`, type: 1, key: 'k', data: {} }), 107, 'channel too long');
    assert.equal(await code({ channel: 'mk:x', type: 1, key: 'k', removed: true }), 0, 'removed');
    const state = await gyre.api('map_read_state', { channel: 'mk:x', limit: -1 });
    assert.equal((state.entries || []).length, 0);
    // A state page larger than max_page_size is cut to it, not refused.
    for (let i = 0; i < 3; i += 1) await gyre.api('map_publish', { channel: 'mk:big', key: `k${i}`, data: {} });
    const page = await conn.call({ subscribe: { channel: 'mk:big', type: 1, phase: 2, limit: 1000000 } });
    assert.ok(page.subscribe, JSON.stringify(page));
    assert.equal(page.subscribe.state.length, 3);
    conn.close();

    // A field of the wrong type is a malformed command: the connection is closed with 3501.
    let closedWith;
    const bad = await rawConnection(gyre, (c) => {
      closedWith = c;
    });
    bad.ws.send(JSON.stringify({ id: 9, publish: { channel: 'mk:x', type: 'map', key: 'k' } }));
    await once(bad.ws, 'close', { timeoutMs: 5000 }).catch(() => {});
    assert.equal(closedWith, 3501);
  });
});
