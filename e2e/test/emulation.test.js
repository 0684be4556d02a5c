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
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { EventSource } = require('eventsource');

const { binary, startProcess, FLAVOURS, once, collect, unique } = require('../lib/harness');

const T = { timeout: 60000 };
const SECRET = 'e2e-emulation-secret-0123456789abcdef';
const API_KEY = 'e2e-emulation-api-key';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** An HS256 connection token for `user`. */
function token(user) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: user })}`;
  const sig = crypto.createHmac('sha256', SECRET).update(head).digest('base64url');
  return `${head}.${sig}`;
}

/** An RPC proxy backend answering every call with the call's own data. */
async function startRpcEcho() {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const call = JSON.parse(body);
      const result = call.b64data !== undefined ? { b64data: call.b64data } : { data: call.data };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ result }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}/rpc`,
    stop: () => new Promise((r) => server.close(r)),
  };
}

async function startGyre(rpcEndpoint) {
  const port = await freePort();
  const config = {
    log: { level: 'info' },
    http_server: { address: '127.0.0.1', port },
    http_api: { key: API_KEY },
    http_stream: { enabled: true },
    sse: { enabled: true },
    client: { allowed_origins: ['*'], token: { hmac_secret_key: SECRET } },
    channel: {
      namespaces: [
        {
          name: 'emu',
          history_size: 100,
          history_ttl: '300s',
          force_recovery: true,
          presence: true,
          allow_subscribe_for_client: true,
          allow_publish_for_subscriber: true,
          allow_presence_for_subscriber: true,
          allow_history_for_subscriber: true,
        },
      ],
    },
    rpc: { proxy: { endpoint: rpcEndpoint, timeout: '3s' }, without_namespace: { proxy_enabled: true } },
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gyre-e2e-emulation-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  const { stop } = await startProcess(
    binary('GYRE_BIN', 'gyre'),
    ['--config', file],
    /serving client connections address=127\.0\.0\.1:(\d+)/,
  );
  const base = `http://127.0.0.1:${port}`;
  const api = async (method, body) => {
    const res = await fetch(`${base}/api/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const json = await res.json();
    if (!res.ok || json.error) throw new Error(`${method}: ${res.status} ${JSON.stringify(json)}`);
    return json.result;
  };
  return {
    base,
    api,
    stop: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

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
