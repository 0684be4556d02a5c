'use strict';
// The chat example in a real browser (headless Chromium driven by playwright-core): two
// tabs, a line typed in one shows in both; a tab opened later shows the earlier lines.

const { it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { binary, startProcess } = require('../lib/harness');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
const SKIP = haveChromium ? false : `${CHROMIUM} not found (install Debian's chromium package)`;

let chat;
let browser;
let base;

before(async () => {
  if (SKIP) return;
  chat = await startProcess(
    binary('GYRE_CHAT_BIN', 'gyre-example-chat'),
    [],
    /chat on http:\/\/localhost:(\d+)/,
    { env: { PORT: '0' }, timeoutMs: 120000 }, // the first start may run `npm ci`
  );
  base = `http://127.0.0.1:${chat.match[1]}`;
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
  if (chat) await chat.stop();
});

async function openTab() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(base + '/', { timeout: 10000 });
  await page.waitForSelector('#status.connected', { timeout: 10000 });
  page.errors = errors;
  return page;
}

const texts = (page) => page.$$eval('#messages li .text', (els) => els.map((el) => el.textContent));

it('chat: every open tab sees every line; a new tab shows the history', { skip: SKIP, timeout: 60000 }, async () => {
  const sdk = await fetch(base + '/centrifuge.js');
  assert.equal(sdk.status, 200);
  assert.match(sdk.headers.get('content-type'), /javascript/);
  assert.match(await sdk.text(), /globalThis\.Centrifuge=/);

  const tab1 = await openTab();
  const tab2 = await openTab();

  const first = `hello from tab 1 at ${Date.now()}`;
  await tab1.fill('#input', first);
  await tab1.press('#input', 'Enter');
  for (const tab of [tab1, tab2]) {
    await tab.waitForFunction(
      (t) => [...document.querySelectorAll('#messages li .text')].some((el) => el.textContent === t),
      first,
      { timeout: 10000 },
    );
  }
  assert.equal(await tab1.inputValue('#input'), '', 'input cleared after sending');
  assert.equal(await tab1.$eval('#messages li:last-child .who', (el) => el.textContent), 'you');
  assert.match(await tab2.$eval('#messages li:last-child .who', (el) => el.textContent), /^guest-/);

  const second = 'and tab 2 answers';
  await tab2.fill('#input', second);
  await tab2.press('#input', 'Enter');
  for (const tab of [tab1, tab2]) {
    await tab.waitForFunction(
      (t) => [...document.querySelectorAll('#messages li .text')].some((el) => el.textContent === t),
      second,
      { timeout: 10000 },
    );
    assert.deepEqual((await texts(tab)).slice(-2), [first, second]);
  }

  // An empty line is not sent; a new tab catches up from history.
  await tab1.press('#input', 'Enter');
  const tab3 = await openTab();
  await tab3.waitForFunction(() => document.querySelectorAll('#messages li').length >= 2, null, { timeout: 10000 });
  assert.deepEqual((await texts(tab3)).slice(-2), [first, second]);
  assert.deepEqual((await texts(tab1)).slice(-2), [first, second]);

  const shot = path.join(process.env.GYRE_E2E_ARTIFACTS || os.tmpdir(), 'gyre-chat.png');
  await tab1.screenshot({ path: shot });
  assert.ok(fs.statSync(shot).size > 1000, 'screenshot written');
  for (const tab of [tab1, tab2, tab3]) assert.deepEqual(tab.errors, [], 'no page errors');
});
