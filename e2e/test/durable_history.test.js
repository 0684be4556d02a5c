'use strict';
// Durable history on the single-node memory engine (`engine.memory.data_dir`, a Gyre
// extension), with the real centrifuge-js SDK: a subscribed client loses its connection, the
// server is killed with SIGKILL (and later stopped with SIGTERM) and started again on the same
// data directory, publications are made before the kill and after the restart while the
// client is kept away, and the client then recovers every one of them with `recovered: true`
// and the epoch it had before.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');

const { GYRE_LISTENING, binary, startProcess, once, collect, unique } = require('../lib/harness');

const T = { timeout: 60000 };
const KEY = 'e2e-durable-key';

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

/** A `gyre` on a fixed port and data directory, so a restart is the same server to clients. */
function durableServer(port, dataDir, sync) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gyre-e2e-durable-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      http_server: { address: '127.0.0.1', port },
      http_api: { key: KEY },
      client: { allow_anonymous_connect_without_token: true, allowed_origins: ['*'] },
      engine: { memory: { data_dir: dataDir, sync } },
      channel: {
        namespaces: [
          {
            name: 'dur',
            history_size: 100,
            history_ttl: '300s',
            force_recovery: true,
            allow_subscribe_for_anonymous: true,
            allow_subscribe_for_client: true,
          },
        ],
      },
    }),
  );
  let proc;
  return {
    start: async () => {
      proc = await startProcess(binary('GYRE_BIN', 'gyre'), ['--config', file], GYRE_LISTENING);
    },
    kill9: async () => {
      const exited = new Promise((res) => proc.child.once('exit', res));
      process.kill(proc.child.pid, 'SIGKILL');
      await exited;
    },
    stop: async () => {
      if (proc) await proc.stop();
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
    publish: async (channel, data) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': KEY },
        body: JSON.stringify({ channel, data }),
        signal: AbortSignal.timeout(5000),
      });
      const body = await res.json();
      assert.equal(res.status, 200);
      assert.equal(body.error, undefined, JSON.stringify(body));
      return body.result;
    },
  };
}

for (const sync of ['interval', 'always']) {
  describe(`durable history, sync ${sync}`, () => {
    it('a client recovers across kill -9 and a clean restart with the same epoch', T, async () => {
      const port = await freePort();
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gyre-e2e-durable-data-'));
      const server = durableServer(port, dataDir, sync);
      await server.start();
      // While `away` is set, the SDK's reconnects go to a closed port: the client is kept
      // off the server however its back-off is timed.
      let away = false;
      const sockets = [];
      class GateWebSocket extends WebSocket {
        constructor(url, protocols) {
          super(away ? 'ws://127.0.0.1:9/connection/websocket' : url, protocols);
          sockets.push(this);
        }
      }
      const client = new Centrifuge(`ws://127.0.0.1:${port}/connection/websocket`, {
        websocket: GateWebSocket,
        timeout: 5000,
        minReconnectDelay: 200,
        maxReconnectDelay: 600,
      });
      try {
        const channel = unique('dur:room');
        const sub = client.newSubscription(channel);
        const subscribed = collect(sub, 'subscribed');
        const pubs = collect(sub, 'publication');
        sub.subscribe();
        client.connect();
        await subscribed.until(1);
        const epoch = subscribed[0].streamPosition.epoch;
        assert.ok(epoch);
        for (let n = 1; n <= 3; n++) await server.publish(channel, { n });
        await pubs.until(3);

        // The client drops off; two publications are made before the crash.
        away = true;
        const connecting = once(client, 'connecting');
        sockets.at(-1).terminate();
        await connecting;
        for (let n = 4; n <= 5; n++) await server.publish(channel, { n });
        await server.kill9();
        await server.start();
        // Two more after the restart, before the client is back.
        const after = [];
        for (let n = 6; n <= 7; n++) after.push(await server.publish(channel, { n }));
        assert.deepEqual(
          after.map((r) => [r.offset, r.epoch]),
          [
            [6, epoch],
            [7, epoch],
          ],
        );
        away = false;
        await subscribed.until(2, 15000);
        assert.equal(subscribed[1].wasRecovering, true);
        assert.equal(subscribed[1].recovered, true);
        assert.equal(subscribed[1].streamPosition.epoch, epoch);
        await pubs.until(7);
        assert.deepEqual(
          pubs.map((p) => [p.offset, p.data.n]),
          [1, 2, 3, 4, 5, 6, 7].map((n) => [n, n]),
        );

        // A clean stop (SIGTERM: the client is told to reconnect) and start.
        away = true;
        const again = once(client, 'connecting', { timeoutMs: 10000 });
        await server.stop();
        await again;
        await server.start();
        await server.publish(channel, { n: 8 });
        away = false;
        await subscribed.until(3, 15000);
        assert.equal(subscribed[2].recovered, true);
        assert.equal(subscribed[2].streamPosition.epoch, epoch);
        await pubs.until(8);
        assert.deepEqual(pubs.at(-1).data, { n: 8 });
        assert.equal(pubs.at(-1).offset, 8);

        // Live again.
        await server.publish(channel, { n: 9 });
        await pubs.until(9);
        assert.equal(pubs.length, 9);
      } finally {
        client.disconnect();
        await server.stop();
        server.cleanup();
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
}
