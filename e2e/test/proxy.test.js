'use strict';
// Centrifugo v6 event proxies with the real centrifuge JS SDK against the `gyre` binary
// (GYRE_BIN, else $CARGO_TARGET_DIR/debug/gyre: `cargo build -p gyre-server --bins`):
// connect, subscribe, publish and RPC proxies at a backend of our own, once with http://
// endpoints (JSON POST to a Node http server) and once with grpc:// endpoints (a
// @grpc/grpc-js CentrifugoProxy server from proto/proxy.proto). The full table of proxy
// cases is compat/python/test_proxy.py; this is the JS SDK's share of it.

const { describe, it, before, after, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');

const { GYRE_LISTENING, binary, startProcess, once, unique } = require('../lib/harness');
const { ProxyBackend } = require('../lib/proxy_backend');

const T = { timeout: 30000 };

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

/** A proxy's options: the backend's endpoint for `event`, `X-Custom` forwarded. */
function proxy(backend, flavour, event) {
  return { endpoint: backend.endpoint(flavour, event), timeout: '3s', http_headers: ['X-Custom'] };
}

/** Starts `gyre` with the proxies of `flavour` at `backend`; resolves with { wsUrl, stop }. */
async function startGyre(backend, flavour) {
  const port = await freePort();
  const config = {
    // Starts even where a proxy is missing (its tests then fail, the others run).
    gyre: { allow_unsupported: true },
    log: { level: 'info' },
    health: { enabled: true },
    http_server: { address: '127.0.0.1', port },
    client: {
      allowed_origins: ['*'],
      token: { hmac_secret_key: 'e2e-proxy-secret-0123456789abcdef' },
      proxy: { connect: { enabled: true, ...proxy(backend, flavour, 'connect') } },
    },
    channel: {
      proxy: {
        subscribe: proxy(backend, flavour, 'subscribe'),
        publish: proxy(backend, flavour, 'publish'),
      },
      namespaces: [
        {
          name: 'px',
          presence: true,
          allow_presence_for_subscriber: true,
          subscribe_proxy_enabled: true,
          publish_proxy_enabled: true,
        },
      ],
    },
    rpc: {
      proxy: proxy(backend, flavour, 'rpc'),
      namespaces: [{ name: 'api', proxy_enabled: true }],
    },
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gyre-e2e-proxy-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  const { stop } = await startProcess(
    binary('GYRE_BIN', 'gyre'),
    ['--config', file],
    GYRE_LISTENING,
  );
  return {
    wsUrl: `ws://127.0.0.1:${port}/connection/websocket`,
    stop: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A WebSocket that sends `X-Custom` (and a header not allowed) in its upgrade request. */
class HeaderWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { 'X-Custom': 'from-upgrade', 'X-Not-Listed': 'secret' } });
  }
}

let backend;
before(async () => {
  backend = await new ProxyBackend().start();
});
after(async () => {
  if (backend) await backend.stop();
});

for (const flavour of ['http', 'grpc']) {
  describe(`${flavour} proxies`, () => {
    let server;
    const clients = [];
    before(async () => {
      server = await startGyre(backend, flavour);
    });
    after(async () => {
      if (server) await server.stop();
    });
    beforeEach(() => backend.forgetRequests());
    afterEach(() => {
      for (const c of clients.splice(0)) c.disconnect();
    });

    /** A client without a token whose connect proxy answer is `answer`; resolves once
     * connected with [client, connectedCtx, key]. */
    async function connectVia(answer) {
      const key = unique('key');
      backend.answer('connect', answer, key);
      const c = new Centrifuge(server.wsUrl, {
        websocket: HeaderWebSocket,
        data: { key },
        timeout: 5000,
        minReconnectDelay: 300,
        maxReconnectDelay: 1000,
      });
      clients.push(c);
      const ctx = once(c, 'connected');
      c.connect();
      return [c, await ctx, key];
    }

    it('connect proxy: user, info, data and server-side channels', T, async () => {
      const user = unique('alice');
      const channel = unique('px:srv');
      const key = unique('key');
      backend.answer(
        'connect',
        { result: { user, info: { name: 'Alice' }, data: { welcome: user }, channels: [channel] } },
        key,
      );
      const c = new Centrifuge(server.wsUrl, { websocket: HeaderWebSocket, data: { key, hi: 1 }, timeout: 5000 });
      clients.push(c);
      const connected = once(c, 'connected');
      const serverSub = once(c, 'subscribed', { filter: (ctx) => ctx.channel === channel });
      c.connect();
      const ctx = await connected;
      assert.deepEqual(ctx.data, { welcome: user });
      await serverSub;

      const presence = await c.presence(channel);
      assert.deepEqual(Object.keys(presence.clients), [ctx.client]);
      assert.equal(presence.clients[ctx.client].user, user);
      assert.deepEqual(presence.clients[ctx.client].connInfo, { name: 'Alice' });

      const [request] = backend.requests('connect', key);
      assert.equal(request.body.client, ctx.client);
      assert.deepEqual(request.body.data, { key, hi: 1 });
      assert.equal(request.body.transport, 'websocket');
      assert.equal(request.headers['x-custom'], 'from-upgrade');
      assert.equal(request.headers['x-not-listed'], undefined);
    });

    it('connect proxy: a custom error ends the client disconnected with its code', T, async () => {
      const key = unique('key');
      backend.answer('connect', { error: { code: 1000, message: 'not you' } }, key);
      const c = new Centrifuge(server.wsUrl, { websocket: WebSocket, data: { key }, timeout: 5000 });
      clients.push(c);
      const disconnected = once(c, 'disconnected');
      c.connect();
      const ctx = await disconnected;
      assert.equal(ctx.code, 1000);
      assert.equal(ctx.reason, 'not you');
    });

    it('subscribe proxy: allows with data, denies with a custom error', T, async () => {
      const user = unique('bob');
      const [c] = await connectVia({ result: { user } });

      const allowed = unique('px:ok');
      backend.answer('subscribe', { result: { data: { welcome: allowed }, info: { seat: 3 } } }, allowed);
      const sub = c.newSubscription(allowed, { data: { want: 'in' } });
      const subscribed = once(sub, 'subscribed');
      sub.subscribe();
      const ctx = await subscribed;
      assert.deepEqual(ctx.data, { welcome: allowed });
      const presence = await sub.presence();
      assert.deepEqual(Object.values(presence.clients)[0].chanInfo, { seat: 3 });
      const [request] = backend.requests('subscribe', allowed);
      assert.equal(request.body.user, user);
      assert.equal(request.body.channel, allowed);
      assert.deepEqual(request.body.data, { want: 'in' });
      assert.equal(request.headers['x-custom'], 'from-upgrade');

      const denied = unique('px:no');
      backend.answer('subscribe', { error: { code: 1403, message: 'not for you' } }, denied);
      const refused = c.newSubscription(denied);
      const unsubscribed = once(refused, 'unsubscribed');
      refused.subscribe();
      const u = await unsubscribed;
      assert.equal(u.code, 1403);
      assert.equal(u.reason, 'not for you');
    });

    it('publish proxy: rewrites the data, rejects with a custom error', T, async () => {
      const channel = unique('px:pub');
      const [reader] = await connectVia({ result: { user: unique('reader') } });
      const sub = reader.newSubscription(channel);
      const subscribed = once(sub, 'subscribed');
      sub.subscribe();
      await subscribed;
      const writerUser = unique('writer');
      const [writer] = await connectVia({ result: { user: writerUser } });

      backend.answer('publish', { result: { data: { rewritten: true } } }, channel);
      const publication = once(sub, 'publication');
      await writer.publish(channel, { text: 'original' });
      const pub = await publication;
      assert.deepEqual(pub.data, { rewritten: true });
      assert.equal(pub.info.user, writerUser);
      const [request] = backend.requests('publish', channel);
      assert.deepEqual(request.body.data, { text: 'original' });
      assert.equal(request.body.user, writerUser);

      backend.answer('publish', { error: { code: 1404, message: 'read only' } }, channel);
      await assert.rejects(writer.publish(channel, { text: 'again' }), (err) => {
        assert.equal(err.code, 1404);
        assert.equal(err.message, 'read only');
        return true;
      });
    });

    it('rpc proxy: a method of rpc.namespaces reaches the backend, an unknown namespace is 104', T, async () => {
      const user = unique('rpc');
      const [c] = await connectVia({ result: { user } });
      backend.answer('rpc', { result: { data: { sum: 3 } } }, 'api:sum');
      const result = await c.rpc('api:sum', { a: 1, b: 2 });
      assert.deepEqual(result.data, { sum: 3 });
      const [request] = backend.requests('rpc', 'api:sum');
      assert.equal(request.body.user, user);
      assert.equal(request.body.method, 'api:sum');
      assert.deepEqual(request.body.data, { a: 1, b: 2 });

      await assert.rejects(c.rpc('unknown:x', {}), (err) => {
        assert.equal(err.code, 104);
        return true;
      });
      assert.deepEqual(backend.requests('rpc', 'unknown:x'), []);
    });
  });
}
