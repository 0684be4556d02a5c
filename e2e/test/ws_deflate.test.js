'use strict';
// WebSocket permessage-deflate (`websocket.compression`) against the `gyre` binary, with
// three real peers: the npm `ws` client (what centrifuge-js uses in Node), the
// centrifuge-js SDK over it, and headless Chromium (playwright-core). Each must negotiate
// the extension, get publications through it, and see far fewer bytes on the wire than
// the payload has. With compression off (the default) nothing is negotiated.

const { it, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');

const { token, startGyre } = require('../lib/emulation_server');
const { once } = require('../lib/harness');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const NO_BROWSER = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (install Debian's chromium package)`;
const SDK = path.join(__dirname, '..', 'node_modules', 'centrifuge', 'dist', 'centrifuge.js');
const NEGOTIATED = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
// No RPC is called here; the emulation server wants an endpoint all the same.
const NO_RPC = 'http://127.0.0.1:9/rpc';

/** A publication that compresses well: about 20 KB of repeated words. */
function bigData(tag) {
  return { tag, text: 'the quick brown fox jumps over the lazy dog '.repeat(460) };
}

/** Opens a raw protocol connection with the `ws` client; resolves once open. */
async function openWs(url, perMessageDeflate) {
  const ws = new WebSocket(url, { perMessageDeflate });
  ws.once('upgrade', (res) => {
    ws.negotiated = res.headers['sec-websocket-extensions'] || '';
  });
  const replies = [];
  const waiters = [];
  ws.on('message', (data) => {
    for (const line of data.toString().split('\n')) {
      if (!line) continue;
      const reply = JSON.parse(line);
      if (Object.keys(reply).length === 0) {
        ws.send('{}'); // the protocol's ping
        continue;
      }
      replies.push(reply);
    }
    for (const w of [...waiters]) w();
  });
  ws.next = (filter, timeoutMs = 5000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const i = replies.findIndex(filter);
        if (i < 0) return false;
        clearTimeout(timer);
        waiters.splice(waiters.indexOf(check), 1);
        resolve(replies.splice(i, 1)[0]);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(check), 1);
        reject(new Error('no matching reply in time'));
      }, timeoutMs);
      waiters.push(check);
      check();
    });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}

async function subscribeRaw(ws, user, channel) {
  ws.send(JSON.stringify({ id: 1, connect: { token: token(user) } }) + '\n' +
    JSON.stringify({ id: 2, subscribe: { channel } }));
  await ws.next((r) => r.id === 1 && r.connect);
  await ws.next((r) => r.id === 2 && r.subscribe);
}

describe('websocket.compression on', () => {
  let server;
  before(async () => {
    server = await startGyre(NO_RPC, { websocket: { compression: true } });
  });
  after(async () => {
    if (server) await server.stop();
  });
  const wsUrl = () => `${server.base.replace('http', 'ws')}/connection/websocket`;

  it('ws client: negotiated, publications arrive compressed, client commands may be compressed', async () => {
    const ws = await openWs(wsUrl(), true);
    try {
      assert.equal(ws.negotiated, NEGOTIATED);
      assert.equal(ws.extensions, 'permessage-deflate');
      await subscribeRaw(ws, 'ws-user', 'emu:ws');
      const before = ws._socket.bytesRead;
      const data = bigData('ws');
      await server.api('publish', { channel: 'emu:ws', data });
      const push = await ws.next((r) => r.push && r.push.pub);
      assert.deepEqual(push.push.pub.data, data);
      const onWire = ws._socket.bytesRead - before;
      const size = JSON.stringify(data).length;
      assert.ok(onWire < size / 10, `${onWire} bytes on the wire for a ${size}-byte payload`);
      // The ws client compresses what it sends (threshold 1 KiB): a large client
      // publication is inflated by the server and reaches the subscriber intact.
      const own = bigData('from-client');
      ws.send(JSON.stringify({ id: 3, publish: { channel: 'emu:ws', data: own } }));
      await ws.next((r) => r.id === 3);
      const echoed = await ws.next((r) => r.push && r.push.pub);
      assert.deepEqual(echoed.push.pub.data, own);
    } finally {
      ws.close();
    }
  });

  it('centrifuge-js over Node negotiates permessage-deflate and receives publications', async () => {
    const sockets = [];
    class Tracked extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols, { perMessageDeflate: true });
        this.once('upgrade', (res) => {
          this.negotiated = res.headers['sec-websocket-extensions'] || '';
        });
        sockets.push(this);
      }
    }
    const client = new Centrifuge(wsUrl(), { websocket: Tracked, token: token('sdk-user'), timeout: 5000 });
    try {
      const connected = once(client, 'connected');
      client.connect();
      await connected;
      assert.equal(sockets[0].negotiated, NEGOTIATED);
      assert.equal(sockets[0].extensions, 'permessage-deflate');
      const sub = client.newSubscription('emu:sdk');
      const subscribed = once(sub, 'subscribed');
      sub.subscribe();
      await subscribed;
      const before = sockets[0]._socket.bytesRead;
      const got = once(sub, 'publication');
      const data = bigData('sdk');
      await server.api('publish', { channel: 'emu:sdk', data });
      assert.deepEqual((await got).data, data);
      const onWire = sockets[0]._socket.bytesRead - before;
      assert.ok(onWire < JSON.stringify(data).length / 10, `${onWire} bytes on the wire`);
    } finally {
      client.disconnect();
    }
  });

  describe('headless Chromium', { skip: NO_BROWSER }, () => {
    let browser;
    let pages;
    let pagesBase;
    before(async () => {
      const sdk = fs.readFileSync(SDK);
      pages = http.createServer((req, res) => {
        if (req.url === '/centrifuge.js') {
          res.setHeader('content-type', 'text/javascript');
          res.end(sdk);
        } else {
          res.setHeader('content-type', 'text/html');
          res.end('<!doctype html><meta charset="utf-8"><script src="/centrifuge.js"></script>');
        }
      });
      await new Promise((r) => pages.listen(0, '127.0.0.1', r));
      pagesBase = `http://127.0.0.1:${pages.address().port}`;
      const { chromium } = require('playwright-core');
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync',
        ],
      });
    });
    after(async () => {
      if (browser) await browser.close();
      if (pages) await new Promise((r) => pages.close(r));
    });

    it('the browser negotiates permessage-deflate and the SDK receives publications', { timeout: 60000 }, async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        // The handshake as the browser's network stack saw it.
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        const handshakes = [];
        cdp.on('Network.webSocketHandshakeResponseReceived', (e) => handshakes.push(e.response));
        await page.goto(pagesBase + '/', { timeout: 10000 });
        const data = bigData('browser');
        const resultP = page.evaluate(([url, tok]) => new Promise((resolve, reject) => {
          const sockets = [];
          class Tracked extends WebSocket {
            constructor(...args) {
              super(...args);
              sockets.push(this);
            }
          }
          const c = new Centrifuge(url, { token: tok, websocket: Tracked, timeout: 5000 });
          const timer = setTimeout(() => reject(new Error('no publication within 15 s')), 15000);
          const sub = c.newSubscription('emu:browser');
          sub.on('subscribed', () => { window.subscribed = true; });
          sub.on('publication', (p) => {
            clearTimeout(timer);
            const extensions = sockets[0].extensions;
            c.disconnect();
            resolve({ extensions, data: p.data });
          });
          sub.subscribe();
          c.connect();
        }), [wsUrl(), token('browser-user')]);
        await page.waitForFunction(() => window.subscribed === true, null, { timeout: 10000 });
        await server.api('publish', { channel: 'emu:browser', data });
        const result = await resultP;
        assert.equal(result.extensions, NEGOTIATED);
        assert.deepEqual(result.data, data);
        assert.ok(handshakes.length >= 1, 'handshake seen');
        const headers = Object.fromEntries(
          Object.entries(handshakes[0].headers).map(([k, v]) => [k.toLowerCase(), v]),
        );
        assert.equal(headers['sec-websocket-extensions'], NEGOTIATED);
      } finally {
        await context.close();
      }
    });
  });
});

describe('websocket.compression off (the default)', () => {
  let server;
  before(async () => {
    server = await startGyre(NO_RPC);
  });
  after(async () => {
    if (server) await server.stop();
  });

  it('nothing is negotiated and publications arrive uncompressed', async () => {
    const ws = await openWs(`${server.base.replace('http', 'ws')}/connection/websocket`, true);
    try {
      assert.equal(ws.negotiated, '');
      assert.equal(ws.extensions, '');
      await subscribeRaw(ws, 'plain-user', 'emu:plain');
      const before = ws._socket.bytesRead;
      const data = bigData('plain');
      await server.api('publish', { channel: 'emu:plain', data });
      const push = await ws.next((r) => r.push && r.push.pub);
      assert.deepEqual(push.push.pub.data, data);
      assert.ok(ws._socket.bytesRead - before > JSON.stringify(data).length);
    } finally {
      ws.close();
    }
  });
});
