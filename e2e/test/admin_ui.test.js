'use strict';
// The admin web UI in headless Chromium against two `gyre` nodes on Redis: login (a wrong
// password refused first), the status page listing both nodes with counts that follow a
// real centrifuge-js client, a publish from the actions page reaching that client, the
// live view showing a publication made through the server API, and both themes.
// Screenshots go to $GYRE_E2E_ARTIFACTS (default e2e/artifacts/).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');

const { once, unique } = require('../lib/harness');
const { token, startGyre } = require('../lib/emulation_server');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SKIP = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (install Debian's chromium package)`;
const ARTIFACTS = process.env.GYRE_E2E_ARTIFACTS || path.join(__dirname, '..', 'artifacts');
const PASSWORD = 'e2e-admin-password';
const T = { timeout: 90000 };

async function waitForCluster(node, n) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const info = await node.api('info', {});
    if ((info.nodes || []).length >= n) return;
    if (Date.now() > deadline) throw new Error(`cluster of ${n} not formed: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The cells of a node's row on the status page: [version, uptime, clients, users, channels, subs]. */
async function nodeRow(page, name) {
  return page.$$eval(`#nodes tbody tr[data-node="${name}"] td`, (tds) => tds.map((td) => td.textContent));
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file });
  assert.ok(fs.statSync(file).size > 1000, `${file} written`);
}

describe('admin web UI', { skip: SKIP }, () => {
  const names = [unique('gyre-a'), unique('gyre-b')];
  const nodes = [];
  const clients = [];
  let browser;

  before(async () => {
    const prefix = unique('e2e-admin');
    for (const name of names) {
      nodes.push(await startGyre(undefined, {
        node: { name },
        engine: { type: 'redis', redis: { address: ['redis://127.0.0.1:6379'], prefix } },
        admin: { enabled: true, password: PASSWORD, secret: 'e2e-admin-secret' },
        channel: { without_namespace: { allow_subscribe_for_client: true } },
        rpc: {},
      }));
    }
    await Promise.all(nodes.map((node) => waitForCluster(node, 2)));
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
    for (const c of clients.splice(0)) c.disconnect();
    if (browser) await browser.close();
    for (const node of nodes.splice(0)) await node.stop();
  });

  it('logs in, follows the cluster, publishes, watches a channel, switches theme', T, async () => {
    const [a, b] = nodes;
    const context = await browser.newContext({ colorScheme: 'light', viewport: { width: 1100, height: 720 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e));
    await page.goto(`${a.base}/`);

    // Login: a wrong password is refused, the right one opens the status page.
    await page.getByLabel('Admin password').fill('not-the-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor();
    assert.equal(await page.locator('#nav').isVisible(), false);
    await page.getByLabel('Admin password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Cluster status' }).waitFor();

    // Both nodes are listed.
    for (const name of names) await page.locator(`#nodes tbody tr[data-node="${name}"]`).waitFor();
    assert.equal((await nodeRow(page, names[1]))[2], '0', 'no clients on B yet');

    // A real client on node B: the status page's counts follow.
    const channel = unique('admin-news');
    const client = new Centrifuge(b.base.replace('http', 'ws') + '/connection/websocket', {
      websocket: WebSocket,
      token: token('viewer-1'),
    });
    clients.push(client);
    const sub = client.newSubscription(channel);
    sub.subscribe();
    client.connect();
    await once(sub, 'subscribed', { timeoutMs: 10000 });
    await page.waitForFunction(
      (name) => {
        const row = document.querySelector(`#nodes tbody tr[data-node="${name}"]`);
        if (!row) return false;
        const cells = [...row.querySelectorAll('td')].map((td) => td.textContent);
        return cells[2] === '1' && cells[3] === '1' && cells[5] === '1';
      },
      names[1],
      { timeout: 20000 },
    );
    await shot(page, 'admin-status.png');

    // The actions page publishes through node A; the client on B receives it.
    await page.getByRole('link', { name: 'Actions' }).click();
    await page.getByLabel('Method').selectOption('publish');
    await page.getByLabel('channel', { exact: true }).fill(channel);
    await page.getByLabel('data', { exact: true }).fill('{"text": "from the admin UI"}');
    const received = once(sub, 'publication', { timeoutMs: 10000 });
    await page.getByRole('button', { name: 'Send' }).click();
    assert.deepEqual((await received).data, { text: 'from the admin UI' });
    await page.locator('#action-result').filter({ hasText: '"result"' }).waitFor();
    assert.deepEqual(JSON.parse(await page.locator('#action-result').textContent()), { result: {} });
    await shot(page, 'admin-actions.png');

    // The channels page lists the client's channel with its subscriber.
    await page.getByRole('link', { name: 'Channels' }).click();
    await page.locator('#channels-table tbody tr', { hasText: channel }).waitFor({ timeout: 10000 });

    // The live view shows a publication made through node B's server API.
    await page.getByRole('link', { name: 'Live' }).click();
    await page.getByLabel('Channel', { exact: true }).fill(channel);
    await page.getByRole('button', { name: 'Watch' }).click();
    // (`hasText` with a string ignores case: "Not watching." would match.)
    await page.locator('#live-state').filter({ hasText: /^Watching / }).waitFor({ timeout: 10000 });
    await b.api('publish', { channel, data: { text: 'through the API', n: 42 } });
    await page.locator('#live-pubs li').filter({ hasText: 'through the API' }).waitFor({ timeout: 10000 });

    // The theme toggle switches to dark, and it sticks across a reload.
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(await background(), 'rgb(246, 247, 251)');
    const toggle = page.getByRole('button', { name: 'Dark theme' });
    await toggle.click();
    assert.equal(await page.getByRole('button', { name: 'Light theme' }).getAttribute('aria-pressed'), 'true');
    assert.equal(await background(), 'rgb(17, 21, 29)');
    await shot(page, 'admin-live-dark.png');
    await page.reload();
    await page.getByRole('heading', { name: 'Live channel' }).waitFor();
    assert.equal(await background(), 'rgb(17, 21, 29)');
    assert.deepEqual(pageErrors, []);
    await context.close();
  });

  it('follows the system dark preference and works from the keyboard', T, async () => {
    const context = await browser.newContext({ colorScheme: 'dark', viewport: { width: 1100, height: 720 } });
    const page = await context.newPage();
    await page.goto(`${nodes[0].base}/`);
    const password = page.getByLabel('Admin password');
    await password.waitFor();
    assert.equal(
      await page.evaluate(() => getComputedStyle(document.body).backgroundColor),
      'rgb(17, 21, 29)',
    );
    await password.focus();
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Cluster status' }).waitFor();
    for (const name of names) await page.locator(`#nodes tbody tr[data-node="${name}"]`).waitFor();
    await shot(page, 'admin-status-dark.png');
    await context.close();
  });
});
