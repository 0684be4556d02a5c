'use strict';
// Emulation across nodes with the real centrifuge JS SDK: three `gyre` nodes on Redis, the
// SDK's stream (HTTP-streaming, then SSE) on node A and every `/emulation` request sent to
// node B, publications from the SDK and from node C's HTTP API. The nodes forward the
// emulated commands to A over the engine's control channel; the client sees no difference.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { EventSource } = require('eventsource');

const { FLAVOURS, once, collect, unique } = require('../lib/harness');
const { token, startRpcEcho, startGyre } = require('../lib/emulation_server');

const T = { timeout: 60000 };
const json = FLAVOURS.find((f) => f.name === 'json');

/** Resolves once `node` sees `n` nodes in its `info` (heartbeats go every few seconds). */
async function waitForCluster(node, n) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const info = await node.api('info', {});
    if ((info.nodes || []).length >= n) return;
    if (Date.now() > deadline) throw new Error(`cluster of ${n} not formed: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let rpc;
const nodes = [];
before(async () => {
  rpc = await startRpcEcho();
  const engine = {
    engine: {
      type: 'redis',
      redis: { address: ['redis://127.0.0.1:6379'], prefix: unique('e2e-emulation-cluster') },
    },
  };
  for (let i = 0; i < 3; i += 1) nodes.push(await startGyre(rpc.endpoint, engine));
  await Promise.all(nodes.map((node) => waitForCluster(node, 3)));
});
after(async () => {
  for (const node of nodes.splice(0)) await node.stop();
  if (rpc) await rpc.stop();
});

for (const transport of ['http_stream', 'sse']) {
  describe(`${transport} on node A, /emulation on node B`, () => {
    const clients = [];
    afterEach(() => {
      for (const c of clients.splice(0)) c.disconnect();
    });

    it('subscribes, publishes and calls RPC through another node', T, async () => {
      const [a, b, c] = nodes;
      const channel = unique('emu:cluster');
      const client = new json.Centrifuge(
        [{ transport, endpoint: `${a.base}/connection/${transport}` }],
        {
          emulationEndpoint: `${b.base}/emulation`,
          eventsource: EventSource,
          token: token(unique('cluster-user')),
          timeout: 5000,
        },
      );
      clients.push(client);
      const connected = once(client, 'connected');
      client.connect();
      assert.equal((await connected).transport, transport);

      const sub = client.newSubscription(channel);
      const pubs = collect(sub, 'publication');
      const subscribed = once(sub, 'subscribed');
      sub.subscribe();
      await subscribed;
      // Subscribed through B: node C's API sees the subscriber held by A.
      const presence = await c.api('presence_stats', { channel });
      assert.equal(presence.num_clients, 1);

      await sub.publish({ text: 'from client via B' });
      await c.api('publish', { channel, data: { text: 'from api on C' } });
      await pubs.until(2);
      assert.deepEqual(
        pubs.map((p) => p.data),
        [{ text: 'from client via B' }, { text: 'from api on C' }],
      );

      const reply = await client.rpc('echo', { n: 7 });
      assert.deepEqual(reply.data, { n: 7 });
    });
  });
}
