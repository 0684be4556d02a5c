'use strict';
// Shared helpers of the end-to-end suite: start a server binary on a free port, drive its
// control API, make SDK clients for both protocols, and wait for events with timeouts.

const { spawn } = require('node:child_process');
const path = require('node:path');
const WebSocket = require('ws');

const REPO = path.resolve(__dirname, '..', '..');
const TARGET = process.env.CARGO_TARGET_DIR
  ? path.resolve(REPO, process.env.CARGO_TARGET_DIR)
  : path.join(REPO, 'target');

/** Path of a binary built by cargo (debug profile), overridable by an env var. */
function binary(envVar, name) {
  return process.env[envVar] || path.join(TARGET, 'debug', name);
}

/**
 * The line where `gyre` says it listens for clients, in its text form
 * (`serving client connections address=127.0.0.1:8000`) or its JSON form (what it writes
 * when stdout is not a terminal); group 1 is the port.
 */
const GYRE_LISTENING =
  /^(?=.*serving client connections).*address(?:=|":")127\.0\.0\.1:(\d+)/m;

/**
 * Starts `bin` with `args`, waits (at most `timeoutMs`) until it prints a line matching
 * `readyPattern` on stdout, and returns `{ match, child, stop }`. `stop()` kills the process
 * by its PID (SIGTERM, then SIGKILL after 3 s) and resolves once it exited.
 */
function startProcess(bin, args, readyPattern, { env = {}, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
    // Never outlive the test process, whatever way it ends.
    const killOnExit = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    child.once('exit', () => process.off('exit', killOnExit));
    let output = '';
    let settled = false;
    const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      }, 3000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      stop().finally(() =>
        reject(new Error(`${bin} did not print ${readyPattern} within ${timeoutMs} ms; output: ${output}`)),
      );
    }, timeoutMs);
    child.once('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${err.message} (build it first: see scripts/test.sh)`));
    });
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${bin} exited (code ${code}, signal ${signal}) before it was ready; output: ${output}`));
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = output.match(readyPattern);
      if (match && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve({ match, child, stop });
      }
    });
  });
}

/**
 * Starts `gyre-e2e-server` on a free 127.0.0.1 port. Returns helpers bound to it.
 */
async function startServer() {
  const bin = binary('GYRE_E2E_SERVER', 'gyre-e2e-server');
  const { match, stop } = await startProcess(bin, ['--port', '0'], /listening on 127\.0\.0\.1:(\d+)/);
  const port = Number(match[1]);
  const base = `http://127.0.0.1:${port}`;
  const control = async (method, route, body) => {
    const res = await fetch(base + route, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}/connection/websocket`,
    stop,
    /** Publishes through the library (`Node::publish` with history). Returns {offset, epoch}. */
    publish: (channel, data) => control('POST', '/publish', { channel, data }),
    /** Closes every connection of `user` (default code 3011: clients reconnect). */
    disconnect: (user, code, reason) => control('POST', '/disconnect', { user, code, reason }),
    info: () => control('GET', '/info'),
  };
}

/**
 * The SDK flavours under test. `encode`/`decode` turn a JSON value into the payload the
 * flavour sends and back (the Protobuf SDK carries raw bytes).
 */
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const FLAVOURS = [
  {
    name: 'json',
    Centrifuge: require('centrifuge').Centrifuge,
    encode: (value) => value,
    decode: (data) => data,
  },
  {
    name: 'protobuf',
    Centrifuge: require('centrifuge/build/protobuf').Centrifuge,
    encode: (value) => textEncoder.encode(JSON.stringify(value)),
    decode: (data) => {
      if (!(data instanceof Uint8Array)) throw new Error(`expected bytes, got ${typeof data}`);
      return JSON.parse(textDecoder.decode(data));
    },
  },
];

/**
 * Creates an SDK client for `flavour` against `server`. Every created WebSocket is kept in
 * `client.sockets`, so a test can cut the transport under the SDK. Clients are collected in
 * `registry` (an array) so the test can disconnect them all at the end.
 */
function makeClient(flavour, server, registry, options = {}) {
  const sockets = [];
  class TrackedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  const client = new flavour.Centrifuge(server.wsUrl, {
    websocket: TrackedWebSocket,
    timeout: 5000,
    minReconnectDelay: 300,
    maxReconnectDelay: 1000,
    ...options,
  });
  client.sockets = sockets;
  if (registry) registry.push(client);
  return client;
}

/** Resolves with the first `event` emitted by `emitter` matching `filter`, or rejects on timeout. */
function once(emitter, event, { timeoutMs = 5000, filter = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const onEvent = (ctx) => {
      if (!filter(ctx)) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(ctx);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.on(event, onEvent);
  });
}

/** Collects `event` contexts of `emitter` into an array; `until(n)` waits for n of them. */
function collect(emitter, event) {
  const items = [];
  const waiters = [];
  emitter.on(event, (ctx) => {
    items.push(ctx);
    for (const w of [...waiters]) {
      if (items.length >= w.n) {
        clearTimeout(w.timer);
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(items);
      }
    }
  });
  items.until = (n, timeoutMs = 10000) =>
    new Promise((resolve, reject) => {
      if (items.length >= n) return resolve(items);
      const w = { n, resolve };
      w.timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`got ${items.length} '${event}' events of ${n} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(w);
    });
  return items;
}

/** Polls `check` (async, returns truthy when done) every 50 ms up to `timeoutMs`. */
async function eventually(check, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A unique name for users/channels of one test. */
let counter = 0;
function unique(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

module.exports = {
  GYRE_LISTENING,
  REPO,
  binary,
  startProcess,
  startServer,
  FLAVOURS,
  makeClient,
  once,
  collect,
  eventually,
  unique,
};
