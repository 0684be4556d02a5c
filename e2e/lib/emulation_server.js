'use strict';
// The `gyre` binary with HTTP-streaming and SSE enabled, for the emulation tests: a
// namespace `emu` with history, recovery and presence, HS256 tokens, the HTTP API, and an
// RPC proxy that echoes the call's data.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { GYRE_LISTENING, binary, startProcess } = require('./harness');

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

/** A `gyre` node; `extra` is merged into the top level of its configuration (e.g. an
 * `engine` section to run several nodes as one cluster). */
async function startGyre(rpcEndpoint, extra = {}) {
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
    ...extra,
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gyre-e2e-emulation-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  const { stop } = await startProcess(
    binary('GYRE_BIN', 'gyre'),
    ['--config', file],
    GYRE_LISTENING,
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

module.exports = { freePort, token, startRpcEcho, startGyre };
