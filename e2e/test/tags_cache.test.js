'use strict';
// Tags filters and cache recovery with the real centrifuge JS SDK (JSON and Protobuf builds)
// against the `gyre` binary.
//
// Tags filter: a namespace with `allow_tags_filter`; subscriptions with the SDK's
// `tagsFilter` option receive only the publications whose tags match, live and when
// recovering after a cut connection; a namespace without the option refuses a filter with
// error 107.
//
// Cache recovery: a namespace with `force_recovery_mode: cache`; a subscription asking to
// recover (the SDK's `since` option, or automatically on reconnect) gets only the latest
// publication, from any position, and `recovered: true`; with `auto_cache_recover` even a
// plain first subscribe starts with the latest publication.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');

const { FLAVOURS, once, unique, eventually } = require('../lib/harness');
const { token, startGyre } = require('../lib/emulation_server');

const T = { timeout: 60000 };

function connect(flavour, gyre, options = {}) {
  const sockets = [];
  class Tracked extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  const client = new flavour.Centrifuge(`${gyre.base.replace('http', 'ws')}/connection/websocket`, {
    token: token(unique('tc-user')),
    websocket: Tracked,
    minReconnectDelay: 300,
    maxReconnectDelay: 600,
    ...options,
  });
  client.sockets = sockets;
  return client;
}

/** A subscription collecting the decoded data of every publication it hands over. */
function subscribe(flavour, client, channel, options = {}) {
  const sub = client.newSubscription(channel, options);
  const received = [];
  const subscribed = [];
  sub.on('publication', (ctx) => received.push(flavour.decode(ctx.data)));
  sub.on('subscribed', (ctx) => subscribed.push(ctx));
  return { sub, received, subscribed };
}

/** Cuts the SDK's transport and waits until it notices. */
async function cut(client) {
  const connecting = once(client, 'connecting');
  client.sockets[client.sockets.length - 1].terminate();
  await connecting;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const flavour of FLAVOURS) {
  describe(`tags filter and cache recovery, ${flavour.name} SDK`, () => {
    let gyre;
    before(async () => {
      gyre = await startGyre('http://127.0.0.1:9/rpc', {
        channel: {
          namespaces: [
            {
              name: 'tf',
              history_size: 100,
              history_ttl: '300s',
              force_recovery: true,
              allow_subscribe_for_client: true,
              allow_tags_filter: true,
            },
            { name: 'nofilter', allow_subscribe_for_client: true },
            {
              name: 'cache',
              history_size: 10,
              history_ttl: '300s',
              force_recovery: true,
              force_recovery_mode: 'cache',
              allow_subscribe_for_client: true,
            },
            {
              name: 'autocache',
              history_size: 10,
              history_ttl: '300s',
              force_recovery: true,
              force_recovery_mode: 'cache',
              auto_cache_recover: true,
              allow_subscribe_for_client: true,
            },
          ],
        },
      });
    });
    after(async () => {
      if (gyre) await gyre.stop();
    });

    it('delivers only matching publications, live and recovered', T, async () => {
      const channel = unique('tf:prices');
      const client = connect(flavour, gyre);
      const btc = subscribe(flavour, client, channel, {
        tagsFilter: { key: 'ticker', cmp: 'eq', val: 'BTC' },
      });
      const client2 = connect(flavour, gyre);
      const eth = subscribe(flavour, client2, channel, {
        tagsFilter: {
          op: 'and',
          nodes: [
            { key: 'ticker', cmp: 'in', vals: ['ETH', 'SOL'] },
            { key: 'price', cmp: 'gt', val: '100.5' },
          ],
        },
      });
      const plainClient = connect(flavour, gyre);
      const plain = subscribe(flavour, plainClient, channel);
      try {
        for (const [c, s] of [
          [client, btc],
          [client2, eth],
          [plainClient, plain],
        ]) {
          const subscribed = once(s.sub, 'subscribed');
          s.sub.subscribe();
          c.connect();
          await subscribed;
        }
        const sent = [];
        const publish = async (i, ticker, price) => {
          sent.push({ i, ticker, price });
          await gyre.api('publish', { channel, data: { i }, tags: { ticker, price } });
        };
        await publish(0, 'BTC', '50000');
        await publish(1, 'ETH', '100.5');
        await publish(2, 'ETH', '100.51');
        await publish(3, 'SOL', '1000');
        await publish(4, 'BTC', '1');
        await eventually(() => plain.received.length === 5, 10000, 'all five on the plain subscription');
        await eventually(() => btc.received.length === 2 && eth.received.length === 2, 10000, 'filtered');
        assert.deepEqual(btc.received, [{ i: 0 }, { i: 4 }]);
        assert.deepEqual(eth.received, [{ i: 2 }, { i: 3 }]);
        assert.deepEqual(plain.received, [0, 1, 2, 3, 4].map((i) => ({ i })));

        // Away while others are published: recovery brings back only the matching ones,
        // and the stream goes on filtered.
        await cut(client);
        await publish(5, 'ETH', '5');
        await publish(6, 'BTC', '6');
        await publish(7, 'SOL', '7');
        await eventually(() => btc.subscribed.length === 2, 15000, 'resubscribed');
        assert.equal(btc.subscribed[1].wasRecovering, true);
        assert.equal(btc.subscribed[1].recovered, true);
        await publish(8, 'BTC', '8');
        await publish(9, 'ETH', '9');
        await eventually(() => plain.received.length === 10, 10000, 'all ten on the plain subscription');
        await eventually(() => btc.received.length === 4, 10000, 'btc after recovery');
        await sleep(200);
        assert.deepEqual(btc.received, [0, 4, 6, 8].map((i) => ({ i })));
        // The 'and' filter: SOL 7 passes the ticker test but not the price.
        assert.deepEqual(eth.received, [{ i: 2 }, { i: 3 }]);
      } finally {
        for (const c of [client, client2, plainClient]) c.disconnect();
      }
    });

    it('refuses a filter where the namespace does not allow it, and a malformed one', T, async () => {
      const client = connect(flavour, gyre);
      try {
        client.connect();
        await once(client, 'connected');
        for (const [channel, tagsFilter] of [
          [unique('nofilter:c'), { key: 'a', cmp: 'eq', val: 'b' }],
          [unique('tf:bad'), { key: 'a', cmp: 'zz', val: 'b' }],
          [unique('tf:bad'), { op: 'not', nodes: [] }],
        ]) {
          const sub = client.newSubscription(channel, { tagsFilter });
          // A permanent subscribe error ends the subscription with the error's code.
          const unsubscribed = once(sub, 'unsubscribed');
          sub.subscribe();
          const ctx = await unsubscribed;
          assert.equal(ctx.code, 107, JSON.stringify(ctx));
          client.removeSubscription(sub);
        }
        // The connection is still fine: a filtered subscribe where allowed succeeds.
        const ok = client.newSubscription(unique('tf:ok'), {
          tagsFilter: { key: 'a', cmp: 'ex' },
        });
        const subscribed = once(ok, 'subscribed');
        ok.subscribe();
        await subscribed;
      } finally {
        client.disconnect();
      }
    });

    it('cache recovery hands over only the latest publication', T, async () => {
      const channel = unique('cache:state');
      for (let i = 1; i <= 5; i += 1) await gyre.api('publish', { channel, data: { v: i } });
      const client = connect(flavour, gyre);
      // The SDK's `since` asks the first subscribe to recover from the start.
      const s = subscribe(flavour, client, channel, { since: { offset: 0, epoch: '' } });
      try {
        s.sub.subscribe();
        client.connect();
        await eventually(() => s.subscribed.length === 1, 10000, 'subscribed');
        assert.equal(s.subscribed[0].wasRecovering, true);
        assert.equal(s.subscribed[0].recovered, true);
        await eventually(() => s.received.length === 1, 5000, 'the latest publication');
        assert.deepEqual(s.received, [{ v: 5 }]);
        assert.equal(s.subscribed[0].streamPosition.offset, 5);

        await gyre.api('publish', { channel, data: { v: 6 } });
        await eventually(() => s.received.length === 2, 5000, 'a live publication');

        // Several publications while away: only the newest comes back.
        await cut(client);
        for (let i = 7; i <= 9; i += 1) await gyre.api('publish', { channel, data: { v: i } });
        await eventually(() => s.subscribed.length === 2, 15000, 'resubscribed');
        assert.equal(s.subscribed[1].recovered, true);
        await gyre.api('publish', { channel, data: { v: 10 } });
        await eventually(() => s.received.length === 4, 5000, 'after recovery');
        await sleep(200);
        assert.deepEqual(s.received, [5, 6, 9, 10].map((v) => ({ v })));

        // Away with nothing published: recovered, nothing sent again.
        await cut(client);
        await eventually(() => s.subscribed.length === 3, 15000, 'resubscribed again');
        assert.equal(s.subscribed[2].recovered, true);
        await sleep(300);
        assert.equal(s.received.length, 4);
      } finally {
        client.disconnect();
      }
    });

    it('auto_cache_recover starts every subscription with the latest publication', T, async () => {
      const channel = unique('autocache:state');
      for (let i = 1; i <= 3; i += 1) await gyre.api('publish', { channel, data: { v: i } });
      const client = connect(flavour, gyre);
      const s = subscribe(flavour, client, channel);
      try {
        s.sub.subscribe();
        client.connect();
        await eventually(() => s.received.length === 1, 10000, 'the latest publication');
        assert.deepEqual(s.received, [{ v: 3 }]);
        assert.equal(s.subscribed[0].recovered, true);
      } finally {
        client.disconnect();
      }
    });
  });
}
