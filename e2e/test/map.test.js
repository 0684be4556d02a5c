'use strict';
// Map subscriptions with the real centrifuge JS SDK (JSON and Protobuf builds) against the
// `gyre` binary, once per map broker in MAP_BROKERS (memory, Redis on 127.0.0.1:6379,
// PostgreSQL on 127.0.0.1:5432 in a schema of its own; GYRE_E2E_MAP_BROKERS picks some): the
// initial state read in pages (counted on the wire), live updates and removals from
// another client and from the server API, key TTL expiry, recovery after a cut
// connection, and the protocol's errors for bad requests.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const WebSocket = require('ws');

const { FLAVOURS, collect, eventually, once, unique } = require('../lib/harness');
const { token, startGyre } = require('../lib/emulation_server');

const T = { timeout: 60000 };

const NAMESPACES = [
  {
    name: 'mp',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: {
      mode: 'recoverable',
      key_ttl: '60s',
      min_page_size: 1,
      default_page_size: 2,
      allow_publish_for_subscriber: true,
      allow_remove_for_subscriber: true,
    },
  },
  {
    name: 'mt',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: { mode: 'recoverable', key_ttl: '2s' },
  },
  { name: 'st', allow_subscribe_for_client: true },
  {
    name: 'room',
    allow_subscribe_for_client: true,
    map_clients_presence_channel_prefix: 'pc:',
    map_users_presence_channel_prefix: 'pu:',
  },
  {
    name: 'pc',
    subscription_type: 'map_clients',
    allow_subscribe_for_client: true,
    map: { mode: 'ephemeral', key_ttl: '60s' },
  },
  {
    name: 'pu',
    subscription_type: 'map_users',
    allow_subscribe_for_client: true,
    map: { mode: 'ephemeral', key_ttl: '60s' },
  },
];

/** Every map broker the suite runs on; adding one is adding its name here. */
const MAP_BROKERS = (process.env.GYRE_E2E_MAP_BROKERS || 'memory,redis,postgres')
  .split(',')
  .filter(Boolean);
const PG_DSN = process.env.GYRE_TEST_POSTGRES || 'postgresql://postgres:postgres@127.0.0.1:5432/test';

function psql(sql) {
  execFileSync('psql', [PG_DSN, '-Atqc', sql], { stdio: 'pipe' });
}

/** The `map_broker` section for `broker`, with a key prefix of its own. */
function mapBrokerConfig(broker) {
  if (broker === 'redis') {
    return {
      type: 'redis',
      redis: { address: ['redis://127.0.0.1:6379'], prefix: unique('gyre-e2e-map'), cleanup_interval: '200ms' },
    };
  }
  if (broker === 'postgres') {
    const schema = `gyre_e2e_map_${crypto.randomBytes(6).toString('hex')}`;
    psql(`CREATE SCHEMA ${schema}`);
    const sep = PG_DSN.includes('?') ? '&' : '?';
    return {
      type: 'postgres',
      postgres: {
        dsn: `${PG_DSN}${sep}options=-csearch_path%3D${schema}`,
        num_shards: 2,
        pool_size: 8,
        use_notify: true,
        ttl_check_interval: '200ms',
        outbox: { poll_interval: '50ms' },
      },
      schema,
    };
  }
  return { type: broker };
}

/** Deletes what a run left in the map broker (Redis keys under its prefix, the schema). */
function cleanupMapBroker(config) {
  if (config.type === 'postgres') {
    psql(`DROP SCHEMA IF EXISTS ${config.schema} CASCADE`);
    return;
  }
  if (config.type !== 'redis') return;
  const prefix = config.redis.prefix;
  const keys = execFileSync('redis-cli', ['--scan', '--pattern', `${prefix}*`]).toString().split('\n');
  for (const key of keys.filter(Boolean)) execFileSync('redis-cli', ['DEL', key]);
}

/** Starts gyre with the map namespaces on `broker`; `stop` also cleans the broker. */
async function startMapGyre(broker) {
  const mapBroker = mapBrokerConfig(broker);
  const gyre = await startGyre('http://127.0.0.1:9/rpc', {
    channel: { namespaces: NAMESPACES },
    // `schema` is the suite's own bookkeeping, not a configuration key.
    map_broker: { ...mapBroker, schema: undefined },
  });
  const stop = gyre.stop.bind(gyre);
  gyre.stop = async () => {
    await stop();
    cleanupMapBroker(mapBroker);
  };
  return gyre;
}

const sortedKeys = (entries) => entries.map((e) => e.key).sort();

/** A WebSocket class that records every command frame the SDK sends (JSON only). */
function recordingWebSocket(sent, sockets) {
  return class extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }

    send(data, ...rest) {
      if (typeof data === 'string') {
        for (const line of data.split('\n')) if (line) sent.push(JSON.parse(line));
      }
      return super.send(data, ...rest);
    }
  };
}

function client(flavour, gyre) {
  const sent = [];
  const sockets = [];
  const c = new flavour.Centrifuge(`${gyre.base.replace('http', 'ws')}/connection/websocket`, {
    token: token(unique('map-user')),
    websocket: recordingWebSocket(sent, sockets),
    minReconnectDelay: 300,
    maxReconnectDelay: 600,
  });
  c.sent = sent;
  c.sockets = sockets;
  return c;
}

function subscribes(sent, channel) {
  return sent.filter((c) => c.subscribe && c.subscribe.channel === channel).map((c) => c.subscribe);
}

/** Raw JSON protocol connection: `call(command)` resolves with the reply of that id. */
async function rawConnection(gyre) {
  const ws = new WebSocket(`${gyre.base.replace('http', 'ws')}/connection/websocket`);
  await once(ws, 'open');
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
  return { call, close: () => ws.close() };
}

for (const broker of MAP_BROKERS) {
  for (const flavour of FLAVOURS) {
    describe(`map subscriptions, ${flavour.name} SDK, ${broker} map broker`, () => {
      let gyre;
      const clients = [];
      const newClient = () => {
        const c = client(flavour, gyre);
        clients.push(c);
        return c;
      };
      before(async () => {
        gyre = await startMapGyre(broker);
      });
      after(async () => {
        for (const c of clients) c.disconnect();
        if (gyre) await gyre.stop();
      });

      it('reads the initial state in pages and gets live updates and removals', T, async () => {
        const channel = unique('mp:board');
        for (let i = 0; i < 7; i += 1) {
          await gyre.api('map_publish', { channel, key: `k${i}`, data: { n: i } });
        }
        const a = newClient();
        const sub = a.newMapSubscription(channel, { pageSize: 2 });
        const synced = once(sub, 'sync', { timeoutMs: 10000 });
        const subscribed = once(sub, 'subscribed', { timeoutMs: 10000 });
        a.connect();
        sub.subscribe();
        const ctx = await subscribed;
        assert.equal(ctx.state.length, 7);
        const sync = await synced;
        const entries = sync.entries.map((e) => [e.key, flavour.decode(e.data)]);
        entries.sort(([x], [y]) => x.localeCompare(y));
        assert.deepEqual(
          entries,
          [0, 1, 2, 3, 4, 5, 6].map((i) => [`k${i}`, { n: i }]),
        );
        if (flavour.name === 'json') {
          const pages = subscribes(a.sent, channel).filter((s) => s.phase === 2);
          if (broker === 'redis') {
            // The HSCAN cursor pages a small hash in one go (upstream's Redis broker too).
            assert.ok(pages.length >= 1, JSON.stringify(pages));
            assert.equal(pages.filter((s) => s.cursor).length, pages.length - 1);
          } else {
            assert.equal(pages.length, 4, JSON.stringify(pages));
            assert.equal(pages.filter((s) => s.cursor).length, 3);
          }
          assert.ok(pages.every((s) => s.type === 1 && s.limit === 2));
        }

        // Another client changes keys; so does the server API.
        const b = newClient();
        const subB = b.newMapSubscription(channel, { pageSize: 2 });
        const bReady = once(subB, 'sync', { timeoutMs: 10000 });
        b.connect();
        subB.subscribe();
        await bReady;
        const updates = collect(sub, 'update');
        await subB.publish('k9', flavour.encode({ n: 9 }));
        await subB.remove('k0');
        await gyre.api('map_remove', { channel, key: 'k1' });
        await gyre.api('map_publish', { channel, key: 'k2', data: { n: 22 } });
        await updates.until(4);
        const seen = updates.map((u) => [u.key, u.removed === true, u.removed ? null : flavour.decode(u.data)]);
        assert.deepEqual(seen, [
          ['k9', false, { n: 9 }],
          ['k0', true, null],
          ['k1', true, null],
          ['k2', false, { n: 22 }],
        ]);
        assert.ok(updates[0].info && updates[0].info.user, 'the publisher is attached');
        const state = await gyre.api('map_read_state', { channel, limit: -1 });
        assert.deepEqual(sortedKeys(state.entries), ['k2', 'k3', 'k4', 'k5', 'k6', 'k9']);
        const stats = await gyre.api('map_stats', { channel });
        assert.equal(stats.num_keys, 6);
      });

      it('expires keys after key_ttl with a removal update', T, async () => {
        const channel = unique('mt:ttl');
        const a = newClient();
        const sub = a.newMapSubscription(channel);
        const ready = once(sub, 'subscribed', { timeoutMs: 10000 });
        a.connect();
        sub.subscribe();
        await ready;
        const updates = collect(sub, 'update');
        await gyre.api('map_publish', { channel, key: 'temp', data: { t: 1 } });
        await updates.until(2, 10000);
        assert.equal(updates[0].removed, undefined);
        assert.equal(updates[1].key, 'temp');
        assert.equal(updates[1].removed, true);
      });

      it('lists subscribers in map_clients and map_users presence channels', T, async () => {
        const room = unique('room:r');
        const watcher = newClient();
        const clientsSub = watcher.newMapClientsSubscription(`pc:${room}`);
        const usersSub = watcher.newMapUsersSubscription(`pu:${room}`);
        const clients = collect(clientsSub, 'update');
        const users = collect(usersSub, 'update');
        const ready = Promise.all([
          once(clientsSub, 'subscribed', { timeoutMs: 10000 }),
          once(usersSub, 'subscribed', { timeoutMs: 10000 }),
        ]);
        watcher.connect();
        clientsSub.subscribe();
        usersSub.subscribe();
        await ready;

        const member = newClient();
        const sub = member.newSubscription(room);
        const connected = once(member, 'connected', { timeoutMs: 10000 });
        const joined = once(sub, 'subscribed', { timeoutMs: 10000 });
        member.connect();
        sub.subscribe();
        const { client: clientId } = await connected;
        await joined;
        await clients.until(1);
        await users.until(1);
        assert.equal(clients[0].key, clientId);
        assert.ok(clients[0].info && clients[0].info.user, 'client entries carry the info');
        assert.equal(users[0].key, clients[0].info.user);
        sub.unsubscribe();
        await clients.until(2);
        assert.equal(clients[1].key, clientId);
        assert.equal(clients[1].removed, true);
        const state = await gyre.api('map_read_state', { channel: `pu:${room}`, limit: -1 });
        assert.deepEqual(sortedKeys(state.entries), [users[0].key], 'user entries stay until their TTL');
      });

      it('recovers after a cut connection', T, async () => {
        const channel = unique('mp:recover');
        await gyre.api('map_publish', { channel, key: 'a', data: { v: 1 } });
        const a = newClient();
        const sub = a.newMapSubscription(channel);
        const first = once(sub, 'subscribed', { timeoutMs: 10000 });
        const updates = collect(sub, 'update');
        const syncs = collect(sub, 'sync');
        a.connect();
        sub.subscribe();
        const ctx = await first;
        assert.equal(ctx.recovered, false);
        await eventually(() => syncs.length === 1, 5000, 'first sync');
        assert.equal(updates.length, 0);
        const again = once(sub, 'subscribed', { timeoutMs: 15000 });
        const cut = once(a, 'connecting', { timeoutMs: 5000 });
        a.sockets.at(-1).terminate();
        await cut;
        await gyre.api('map_publish', { channel, key: 'b', data: { v: 2 } });
        await gyre.api('map_publish', { channel, key: 'a', data: { v: 3 } });
        await gyre.api('map_remove', { channel, key: 'b' });
        const recovered = await again;
        assert.equal(recovered.recovered, true);
        await updates.until(3);
        assert.deepEqual(
          updates.map((u) => [u.key, u.removed === true]),
          [
            ['b', false],
            ['a', false],
            ['b', true],
          ],
        );
        assert.equal(syncs.length, 1, 'no new sync after a recovery');
        if (flavour.name === 'json') {
          const streams = subscribes(a.sent, channel).filter((s) => s.phase === 1 && s.recover);
          assert.ok(streams.length >= 1, JSON.stringify(subscribes(a.sent, channel)));
        }
      });
    });
  }

  describe(`map subscriptions, bad input, ${broker} map broker`, () => {
    let gyre;
    before(async () => {
      gyre = await startMapGyre(broker);
    });
    after(async () => {
      if (gyre) await gyre.stop();
    });

    it('answers with the protocol codes', T, async () => {
      const conn = await rawConnection(gyre);
      const code = async (subscribe) => {
        const reply = await conn.call({ subscribe });
        return reply.error ? reply.error.code : 0;
      };
      assert.equal(await code({ channel: 'st:x', type: 1, phase: 2 }), 103, 'map type on a stream namespace');
      assert.equal(await code({ channel: 'mp:x', phase: 0 }), 103, 'stream type on a map namespace');
      assert.equal(await code({ channel: 'mp:x', type: 4 }), 108, 'shared poll');
      assert.equal(await code({ channel: 'mp:x', type: 1, phase: 7 }), 107, 'unknown phase');
      assert.equal(await code({ channel: 'mp:y', type: 1, phase: 2, cursor: 'k1' }), 103, 'cursor without a flow');
      assert.equal(await code({ channel: 'nope:x', type: 1, phase: 2 }), 102, 'unknown namespace');
      const publish = await conn.call({ publish: { channel: 'st:x', type: 1, key: 'k', data: {} } });
      assert.equal(publish.error && publish.error.code, 107, 'map publish into a stream namespace');
      const denied = await conn.call({ publish: { channel: 'mt:x', type: 1, key: 'k', data: {} } });
      assert.equal(denied.error && denied.error.code, 103, 'map publish without permission');
      conn.close();

      const apiError = async (method, body) => {
        try {
          await gyre.api(method, body);
        } catch (e) {
          return JSON.parse(e.message.slice(e.message.indexOf('{'))).error.code;
        }
        return 0;
      };
      assert.equal(await apiError('map_publish', { channel: 'mp:x', data: {} }), 107, 'no key');
      assert.equal(await apiError('map_publish', { channel: 'mp:x', key: 'k', data: {}, key_mode: 'bogus' }), 107);
      assert.equal(await apiError('map_publish', { channel: 'nope:x', key: 'k', data: {} }), 102);
      assert.equal(await apiError('map_publish', { channel: 'st:x', key: 'k', data: {} }), 107, 'stream namespace');
      assert.equal(await apiError('publish', { channel: 'mp:x', data: {} }), 107, 'publish into a map');
      assert.equal(
        await apiError('map_read_stream', { channel: 'mp:x', since_offset: 1, since_epoch: 'bogus', limit: 10 }),
        112,
      );
    });
  });
}
