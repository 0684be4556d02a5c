'use strict';
// Bidirectional emulation with the real centrifuge JS SDK against the `gyre` binary
// (GYRE_BIN, else $CARGO_TARGET_DIR/debug/gyre: `cargo build -p gyre-server --bins`):
// the SDK is given only the HTTP-streaming and SSE transports and the emulation endpoint,
// then connects, subscribes, publishes, calls RPC (through an RPC proxy of our own), asks
// for presence and history, and recovers the publications it missed while a server-side
// disconnect had it reconnect. HTTP-streaming runs with the JSON and the Protobuf SDK,
// SSE (JSON only, as upstream) with the `eventsource` package as Node's EventSource.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { EventSource } = require('eventsource');

const { FLAVOURS, once, collect, unique } = require('../lib/harness');
const { token, startRpcEcho, startGyre } = require('../lib/emulation_server');

const T = { timeout: 60000 };

const VARIANTS = [
  { transport: 'http_stream', flavour: FLAVOURS.find((f) => f.name === 'json') },
  { transport: 'http_stream', flavour: FLAVOURS.find((f) => f.name === 'protobuf') },
  { transport: 'sse', flavour: FLAVOURS.find((f) => f.name === 'json') },
];

let rpc;
let server;
before(async () => {
  rpc = await startRpcEcho();
  server = await startGyre(rpc.endpoint);
});
after(async () => {
  if (server) await server.stop();
  if (rpc) await rpc.stop();
});

for (const { transport, flavour } of VARIANTS) {
  describe(`${transport} (${flavour.name})`, () => {
    const clients = [];
    afterEach(() => {
      for (const c of clients.splice(0)) c.disconnect();
    });

    function client(user) {
      const c = new flavour.Centrifuge(
        [{ transport, endpoint: `${server.base}/connection/${transport}` }],
        {
          emulationEndpoint: `${server.base}/emulation`,
          eventsource: EventSource,
          token: token(user),
          timeout: 5000,
          minReconnectDelay: 500,
          maxReconnectDelay: 1000,
        },
      );
      clients.push(c);
      return c;
    }

    it('connects, subscribes, publishes, calls RPC, reads presence and history', T, async () => {
      const user = unique('emu-user');
      const channel = unique('emu:room');
      const c = client(user);
      const connected = once(c, 'connected');
      c.connect();
      const ctx = await connected;
      assert.equal(ctx.transport, transport);

      const sub = c.newSubscription(channel);
      const pubs = collect(sub, 'publication');
      const subscribed = once(sub, 'subscribed');
      sub.subscribe();
      await subscribed;

      await sub.publish(flavour.encode({ text: 'from client' }));
      await server.api('publish', { channel, data: { text: 'from api' } });
      await pubs.until(2);
      assert.deepEqual(
        pubs.map((p) => flavour.decode(p.data)),
        [{ text: 'from client' }, { text: 'from api' }],
      );

      const reply = await c.rpc('echo', flavour.encode({ n: 7 }));
      assert.deepEqual(flavour.decode(reply.data), { n: 7 });

      const presence = await sub.presence();
      const entries = Object.values(presence.clients);
      assert.equal(entries.length, 1);
      assert.equal(entries[0].user, user);
      assert.equal(entries[0].client, ctx.client);

      const history = await sub.history({ limit: 10 });
      assert.deepEqual(
        history.publications.map((p) => flavour.decode(p.data)),
        [{ text: 'from client' }, { text: 'from api' }],
      );
    });

    it('recovers missed publications after a server-side disconnect', T, async () => {
      const user = unique('emu-rec');
      const channel = unique('emu:rec');
      const c = client(user);
      const sub = c.newSubscription(channel);
      const pubs = collect(sub, 'publication');
      const first = once(sub, 'subscribed');
      sub.subscribe();
      c.connect();
      await first;
      await server.api('publish', { channel, data: { n: 1 } });
      await pubs.until(1);

      // Published while the client waits to reconnect: only recovery can deliver it.
      const reconnecting = once(c, 'connecting', { filter: (ctx) => ctx.code === 3011 });
      const resubscribed = once(sub, 'subscribed');
      await server.api('disconnect', { user, disconnect: { code: 3011, reason: 'test reconnect' } });
      await reconnecting;
      await server.api('publish', { channel, data: { n: 2 } });
      const ctx = await resubscribed;
      assert.equal(ctx.wasRecovering, true);
      assert.equal(ctx.recovered, true);
      await pubs.until(2);
      assert.deepEqual(
        pubs.map((p) => flavour.decode(p.data)),
        [{ n: 1 }, { n: 2 }],
      );
      assert.equal(c.state, 'connected');
    });
  });
}
