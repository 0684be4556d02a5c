'use strict';
// Transport fallback in a real browser (headless Chromium driven by playwright-core): a
// page served from another origin gives the SDK the usual list — WebSocket, then
// HTTP-streaming, then SSE — with the WebSocket endpoint unreachable. The SDK falls back
// to HTTP-streaming on its own; with HTTP-streaming answering 404 too, to SSE. Over the
// transport it lands on, it subscribes and gets its own publication back, through
// `/emulation` and CORS as a browser does it (pre-flight included).

const { it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const { token, freePort, startRpcEcho, startGyre } = require('../lib/emulation_server');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SKIP = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (install Debian's chromium package)`;
const SDK = path.join(__dirname, '..', 'node_modules', 'centrifuge', 'dist', 'centrifuge.js');

// Runs in the page: connects with `transports`, subscribes, publishes, and resolves with
// the transport used and the data that came back.
const PAGE = `<!doctype html><meta charset="utf-8"><script src="/centrifuge.js"></script>
<script>
window.run = (transports, options, channel) => new Promise((resolve, reject) => {
  const c = new Centrifuge(transports, options);
  const timer = setTimeout(() => reject(new Error('no publication within 15 s')), 15000);
  c.on('connected', (ctx) => {
    const sub = c.newSubscription(channel);
    sub.on('publication', (p) => {
      clearTimeout(timer);
      c.disconnect();
      resolve({ transport: ctx.transport, data: p.data });
    });
    sub.on('subscribed', () => sub.publish({ from: 'page' }).catch(reject));
    sub.subscribe();
  });
  c.connect();
});
</script>`;

let rpc;
let server;
let pages;
let pagesBase;
let browser;

before(async () => {
  if (SKIP) return;
  rpc = await startRpcEcho();
  server = await startGyre(rpc.endpoint);
  const sdk = fs.readFileSync(SDK);
  pages = http.createServer((req, res) => {
    if (req.url === '/centrifuge.js') {
      res.setHeader('content-type', 'text/javascript');
      res.end(sdk);
    } else {
      res.setHeader('content-type', 'text/html');
      res.end(PAGE);
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
  if (server) await server.stop();
  if (rpc) await rpc.stop();
});

async function runPage(transports, user, channel) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(pagesBase + '/', { timeout: 10000 });
    const options = {
      emulationEndpoint: `${server.base}/emulation`,
      token: token(user),
      timeout: 5000,
    };
    return await page.evaluate(([t, o, ch]) => window.run(t, o, ch), [transports, options, channel]);
  } finally {
    await context.close();
  }
}

it('falls back from an unreachable WebSocket to HTTP-streaming, then to SSE', { skip: SKIP, timeout: 60000 }, async () => {
  const closedPort = await freePort();
  const websocket = { transport: 'websocket', endpoint: `ws://127.0.0.1:${closedPort}/connection/websocket` };
  const httpStream = { transport: 'http_stream', endpoint: `${server.base}/connection/http_stream` };
  const sse = { transport: 'sse', endpoint: `${server.base}/connection/sse` };

  const viaStream = await runPage([websocket, httpStream, sse], 'browser-1', 'emu:browser-1');
  assert.deepEqual(viaStream, { transport: 'http_stream', data: { from: 'page' } });

  const blockedStream = { ...httpStream, endpoint: `${server.base}/connection/blocked` };
  const viaSse = await runPage([websocket, blockedStream, sse], 'browser-2', 'emu:browser-2');
  assert.deepEqual(viaSse, { transport: 'sse', data: { from: 'page' } });
});
