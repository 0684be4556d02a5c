'use strict';
// Delta compression with the real centrifuge JS SDK (JSON and Protobuf builds) against the
// `gyre` binary: a namespace with `allowed_delta_types: ["fossil"]` and `delta_publish`,
// subscriptions with `delta: 'fossil'`. The SDK applies every fossil delta with the npm
// `fossil-delta` package; the test checks that what it hands to the application is each
// published document exactly, in order, also across a forced reconnect with recovery, and
// that a delta subscription reads far fewer bytes off the wire than a plain one.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');

const { FLAVOURS, once, unique } = require('../lib/harness');
const { token, startGyre } = require('../lib/emulation_server');

const T = { timeout: 60000 };
const PUBLICATIONS = 200;

/** A ~1 KB JSON document of which each version changes a few fields. */
function documentVersion(i) {
  const items = [];
  for (let k = 0; k < 12; k += 1) {
    items.push({ id: k, name: `item-${k}`, price: 100 + k, stock: k === i % 12 ? i : 7 * k });
  }
  return { version: i, title: 'Order book of the day', updated: `t+${i}`, items };
}

/** A WebSocket class that counts the bytes it receives into `counter.bytes`. */
function countingWebSocket(counter, sockets) {
  return class extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
      this.on('message', (data) => {
        // The Protobuf SDK sets binaryType "arraybuffer"; text frames come as Buffers.
        counter.bytes += data.byteLength;
      });
    }
  };
}

function subscriber(flavour, gyre, channel, { delta }) {
  const counter = { bytes: 0 };
  const sockets = [];
  const client = new flavour.Centrifuge(`${gyre.base.replace('http', 'ws')}/connection/websocket`, {
    token: token(unique('delta-user')),
    websocket: countingWebSocket(counter, sockets),
    minReconnectDelay: 300,
    maxReconnectDelay: 600,
  });
  const options = delta ? { delta: 'fossil' } : {};
  const sub = client.newSubscription(channel, options);
  const received = [];
  sub.on('publication', (ctx) => received.push(flavour.decode(ctx.data)));
  return { client, sub, received, counter, sockets };
}

async function eventuallyCount(list, n, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (list.length < n) {
    if (Date.now() > deadline) throw new Error(`got ${list.length} of ${n} publications`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const flavour of FLAVOURS) {
  describe(`delta compression, ${flavour.name} SDK`, () => {
    let gyre;
    before(async () => {
      gyre = await startGyre('http://127.0.0.1:9/rpc', {
        channel: {
          namespaces: [
            {
              name: 'dx',
              history_size: 500,
              history_ttl: '300s',
              force_recovery: true,
              allow_subscribe_for_client: true,
              allowed_delta_types: ['fossil'],
              delta_publish: true,
            },
          ],
        },
      });
    });
    after(async () => {
      if (gyre) await gyre.stop();
    });

    it('hands the application every document exactly while the wire carries deltas', T, async () => {
      const channel = unique('dx:doc');
      const plain = subscriber(flavour, gyre, channel, { delta: false });
      const delta = subscriber(flavour, gyre, channel, { delta: true });
      try {
        for (const s of [plain, delta]) {
          const subscribed = once(s.sub, 'subscribed');
          s.sub.subscribe();
          s.client.connect();
          await subscribed;
        }
        const before = { plain: plain.counter.bytes, delta: delta.counter.bytes };
        const published = [];
        for (let i = 0; i < PUBLICATIONS; i += 1) {
          const doc = documentVersion(i);
          published.push(doc);
          await gyre.api('publish', { channel, data: doc });
        }
        await eventuallyCount(plain.received, PUBLICATIONS);
        await eventuallyCount(delta.received, PUBLICATIONS);
        assert.deepEqual(delta.received, published);
        assert.deepEqual(plain.received, published);
        const plainBytes = plain.counter.bytes - before.plain;
        const deltaBytes = delta.counter.bytes - before.delta;
        console.log(
          `# ${flavour.name}: ${PUBLICATIONS} publications of ~${JSON.stringify(published[0]).length} B: ` +
            `${plainBytes} bytes without delta, ${deltaBytes} bytes with fossil deltas`,
        );
        // Each version differs from the previous one in a few bytes: deltas are a fraction.
        assert.ok(deltaBytes * 3 < plainBytes, `${deltaBytes} vs ${plainBytes}`);
      } finally {
        plain.client.disconnect();
        delta.client.disconnect();
      }
    });

    it('recovers missed documents after a cut connection and goes on with deltas', T, async () => {
      const channel = unique('dx:recover');
      const s = subscriber(flavour, gyre, channel, { delta: true });
      const recoveries = [];
      s.sub.on('subscribed', (ctx) => {
        if (ctx.wasRecovering) recoveries.push(ctx.recovered);
      });
      try {
        const subscribed = once(s.sub, 'subscribed');
        s.sub.subscribe();
        s.client.connect();
        await subscribed;
        const published = [];
        const publish = async (i) => {
          const doc = documentVersion(i);
          published.push(doc);
          await gyre.api('publish', { channel, data: doc });
        };
        for (let i = 0; i < 50; i += 1) await publish(i);
        await eventuallyCount(s.received, 50);
        // Cut the transport under the SDK, publish while it is away, let it come back.
        const resubscribed = once(s.sub, 'subscribed', { timeoutMs: 15000 });
        s.sockets[s.sockets.length - 1].terminate();
        for (let i = 50; i < 80; i += 1) await publish(i);
        await resubscribed;
        for (let i = 80; i < 120; i += 1) await publish(i);
        await eventuallyCount(s.received, 120);
        assert.deepEqual(recoveries, [true]);
        assert.deepEqual(s.received, published);
      } finally {
        s.client.disconnect();
      }
    });
  });
}
