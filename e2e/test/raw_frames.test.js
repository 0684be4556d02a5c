'use strict';
// Raw WebSocket frames (no SDK): push ordering under load, and bad input.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const {
  startServer, FLAVOURS, makeClient, once, collect, eventually, unique,
} = require('../lib/harness');

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  if (server) await server.stop();
});

/**
 * A raw JSON-protocol connection: `replies` gets every reply/push parsed from text frames
 * (frames hold newline-joined messages); server pings (`{}`) are answered with pongs.
 */
function rawJson(url) {
  const ws = new WebSocket(url);
  const messages = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    assert.equal(isBinary, false, 'JSON protocol uses text frames');
    for (const line of data.toString('utf8').split('\n')) {
      const msg = JSON.parse(line);
      if (Object.keys(msg).length === 0) {
        ws.send('{}');
        continue;
      }
      messages.push(msg);
    }
    for (const w of [...waiters]) {
      const found = messages.find(w.match);
      if (found) {
        clearTimeout(w.timer);
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(found);
      }
    }
  });
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => {}); // a close follows every error; tests look at the close
  return {
    ws,
    messages,
    closed,
    opened: once(ws, 'open'),
    /** Waits for the first message matching `match`. */
    waitFor(match, timeoutMs = 5000) {
      const found = messages.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { match, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages).slice(0, 500)}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
  };
}

/** Resolves with the close {code, reason} of `closed`, or rejects after `timeoutMs`. */
function closeWithin(closed, timeoutMs = 5000) {
  return Promise.race([
    closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs)),
  ]);
}

describe('raw JSON frames', () => {
  it('connect + subscribe in one frame, then 200 library publications arrive in offset order without gaps', { timeout: 30000 }, async (t) => {
    const channel = unique('order');
    const conn = rawJson(server.wsUrl);
    t.after(() => conn.ws.terminate());
    await conn.opened;
    conn.ws.send(
      `{"id":1,"connect":{"token":"raw-reader","name":"e2e"}}\n{"id":2,"subscribe":{"channel":"${channel}","recoverable":true,"flag":1}}`,
    );
    const connect = await conn.waitFor((m) => m.id === 1);
    assert.equal(typeof connect.connect.client, 'string');
    assert.ok(connect.connect.client.length > 0);
    assert.equal(connect.connect.ping, 25);
    assert.equal(connect.connect.pong, true);
    const subscribe = await conn.waitFor((m) => m.id === 2);
    assert.equal(subscribe.error, undefined, JSON.stringify(subscribe));
    assert.equal(subscribe.subscribe.recoverable, true);
    assert.equal(subscribe.subscribe.positioned, true);
    assert.ok(subscribe.subscribe.epoch.length > 0);
    const startOffset = subscribe.subscribe.offset || 0;

    // 10 batches of 20 concurrent API publishes.
    for (let b = 0; b < 10; b++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => server.publish(channel, { n: b * 20 + i })));
    }
    await eventually(
      () => conn.messages.filter((m) => m.push && m.push.pub).length >= 200,
      15000,
      '200 pushes',
    );
    const pushes = conn.messages.filter((m) => m.push);
    assert.ok(pushes.every((m) => m.push.channel === channel));
    // join/leave is on for every channel of this server: the only other push is our own join.
    const others = pushes.filter((m) => !m.push.pub);
    assert.deepEqual(others.map((m) => Object.keys(m.push).sort()), [['channel', 'join']]);
    assert.equal(others[0].push.join.info.client, connect.connect.client);
    const pubs = pushes.filter((m) => m.push.pub).map((m) => m.push.pub);
    assert.equal(pubs.length, 200);
    assert.deepEqual(pubs.map((p) => p.offset), Array.from({ length: 200 }, (_, i) => startOffset + i + 1));
    assert.equal(new Set(pubs.map((p) => p.data.n)).size, 200);
    // Pushes are pushes: no id; no time/epoch leaked into publications.
    for (const m of pushes) assert.equal(m.id, undefined);
    for (const p of pubs) {
      assert.equal(p.epoch, undefined);
      assert.equal(p.time, undefined);
    }
  });
});

describe('bad input', () => {
  it('bad clients are closed with the right codes; a healthy client keeps receiving', { timeout: 30000 }, async (t) => {
    // The healthy client: the real SDK, subscribed before the bad clients show up.
    const healthy = makeClient(FLAVOURS[0], server, null, { token: unique('healthy') });
    t.after(() => healthy.disconnect());
    const channel = unique('steady');
    const sub = healthy.newSubscription(channel);
    const pubs = collect(sub, 'publication');
    const subscribed = once(sub, 'subscribed');
    sub.subscribe();
    healthy.connect();
    await subscribed;
    await server.publish(channel, { n: 1 });
    await pubs.until(1);

    const cases = [
      { name: 'malformed JSON', frame: '{"id":1,"connect":', code: 3501 },
      { name: 'not JSON at all', frame: 'hello', code: 3501 },
      { name: 'unknown command', frame: '{"id":1,"foo":{}}', code: 3501 },
      { name: 'command before connect', frame: '{"id":1,"subscribe":{"channel":"x"}}', code: 3501 },
      { name: 'empty line between commands', frame: '{"id":1,"connect":{}}\n\n{"id":2,"rpc":{"method":"echo"}}', code: 3501 },
      { name: 'oversized frame', frame: JSON.stringify({ id: 1, connect: { data: { pad: 'x'.repeat(70000) } } }), code: 1009 },
      { name: 'garbage Protobuf: bad varint', frame: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), protobuf: true, code: 3501 },
      { name: 'garbage Protobuf: truncated message', frame: Buffer.from([0x0a, 0x08, 0x01]), protobuf: true, code: 3501 },
      { name: 'garbage Protobuf: invalid wire type', frame: Buffer.from([0x02, 0x0f, 0x00]), protobuf: true, code: 3501 },
    ];
    const results = await Promise.all(cases.map(async (c) => {
      const url = c.protobuf ? `${server.wsUrl}?format=protobuf` : server.wsUrl;
      const conn = rawJson(url);
      if (c.protobuf) conn.ws.removeAllListeners('message'); // Protobuf replies are not JSON
      await conn.opened;
      conn.ws.send(c.frame);
      const { code } = await closeWithin(conn.closed);
      return { name: c.name, code, expected: c.code };
    }));
    for (const r of results) assert.equal(r.code, r.expected, `${r.name}: close code ${r.code}, expected ${r.expected}`);

    // A bad frame after a good connect also closes with 3501.
    const late = rawJson(server.wsUrl);
    await late.opened;
    late.ws.send('{"id":1,"connect":{}}');
    await late.waitFor((m) => m.id === 1 && m.connect);
    late.ws.send('{"id":2,"subscribe":');
    assert.equal((await closeWithin(late.closed)).code, 3501);

    // The healthy client did not notice.
    assert.equal(healthy.state, 'connected');
    for (let i = 2; i <= 4; i++) await server.publish(channel, { n: i });
    await pubs.until(4);
    assert.deepEqual(pubs.map((p) => p.data.n), [1, 2, 3, 4]);
    assert.deepEqual(pubs.map((p) => p.offset), [1, 2, 3, 4]);
    // And the server forgot the bad connections.
    await eventually(async () => (await server.info()).num_clients === 1, 5000, 'only the healthy client left');
  });
});
