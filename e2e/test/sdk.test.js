'use strict';
// The real centrifuge JS SDK (JSON build and Protobuf build, same cases for both) against
// gyre-e2e-server.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const {
  startServer, FLAVOURS, makeClient, once, collect, eventually, unique,
} = require('../lib/harness');

const T = { timeout: 30000 };

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  if (server) await server.stop();
});

for (const flavour of FLAVOURS) {
  describe(`${flavour.name} SDK`, () => {
    const clients = [];
    const { encode, decode } = flavour;
    const client = (options) => makeClient(flavour, server, clients, options);

    /** Connects a client of `user` and resolves with [client, connectedCtx]. */
    async function connected(user, options = {}) {
      const c = client({ token: user, ...options });
      const ctx = once(c, 'connected');
      c.connect();
      return [c, await ctx];
    }

    /** Subscribes `c` to `channel`, resolves with [subscription, subscribedCtx]. */
    async function subscribed(c, channel) {
      const sub = c.newSubscription(channel);
      const ctx = once(sub, 'subscribed');
      sub.subscribe();
      return [sub, await ctx];
    }

    afterEach(() => {
      for (const c of clients.splice(0)) c.disconnect();
    });

    it('connects: client id, transport, connect data round trip', T, async () => {
      const user = unique('connect');
      const [, ctx] = await connected(user, { data: encode({ hello: 'gyre' }) });
      assert.match(ctx.client, /^[0-9a-f-]{36}$/);
      assert.equal(ctx.transport, 'websocket');
      assert.deepEqual(decode(ctx.data), { hello: 'gyre' });
    });

    it('connects anonymously without a token', T, async () => {
      const c = client();
      const ctx = once(c, 'connected');
      c.connect();
      const { client: id } = await ctx;
      assert.ok(id.length > 0);
      const channel = unique('anon');
      const [sub] = await subscribed(c, channel);
      const presence = await sub.presence();
      assert.equal(presence.clients[id].user, '');
      assert.equal(presence.clients[id].client, id);
    });

    it('subscribes and receives publications published through the library', T, async () => {
      const channel = unique('news');
      const [c] = await connected(unique('reader'));
      const [sub, ctx] = await subscribed(c, channel);
      assert.equal(ctx.recoverable, true);
      assert.equal(ctx.positioned, true);
      assert.equal(ctx.wasRecovering, false);
      assert.ok(ctx.streamPosition.epoch.length > 0, 'epoch set');
      assert.equal(ctx.streamPosition.offset, 0);

      const pubs = collect(sub, 'publication');
      const published = [];
      for (let i = 1; i <= 5; i++) published.push(await server.publish(channel, { n: i }));
      await pubs.until(5);
      assert.deepEqual(pubs.map((p) => decode(p.data)), [1, 2, 3, 4, 5].map((n) => ({ n })));
      assert.deepEqual(pubs.map((p) => p.offset), [1, 2, 3, 4, 5]);
      assert.deepEqual(published.map((r) => r.offset), [1, 2, 3, 4, 5]);
      assert.ok(published.every((r) => r.epoch === ctx.streamPosition.epoch), 'same epoch');
      assert.ok(pubs.every((p) => p.info === undefined), 'library publications carry no client info');
    });

    it('receives all of 200 publications published concurrently (no loss)', T, async () => {
      const channel = unique('burst');
      const [c] = await connected(unique('reader'));
      const [sub] = await subscribed(c, channel);
      const pubs = collect(sub, 'publication');
      const batches = [];
      for (let b = 0; b < 10; b++) {
        batches.push(Promise.all(
          Array.from({ length: 20 }, (_, i) => server.publish(channel, { n: b * 20 + i })),
        ));
      }
      await Promise.all(batches);
      await pubs.until(200, 15000);
      assert.equal(pubs.length, 200);
      const offsets = pubs.map((p) => p.offset).sort((a, b) => a - b);
      assert.deepEqual(offsets, Array.from({ length: 200 }, (_, i) => i + 1));
      const values = new Set(pubs.map((p) => decode(p.data).n));
      assert.equal(values.size, 200);
    });

    it('client publish reaches another subscriber with the publisher info', T, async () => {
      const channel = unique('room');
      const alice = unique('alice');
      const [a, actx] = await connected(alice);
      const [b] = await connected(unique('bob'));
      const [subA] = await subscribed(a, channel);
      const [subB] = await subscribed(b, channel);
      const got = once(subB, 'publication');
      await subA.publish(encode({ text: 'hi from alice' }));
      const pub = await got;
      assert.deepEqual(decode(pub.data), { text: 'hi from alice' });
      assert.equal(pub.info.user, alice);
      assert.equal(pub.info.client, actx.client);
      assert.equal(pub.offset, 1);
    });

    it('presence and presence stats', T, async () => {
      const channel = unique('lobby');
      const u1 = unique('u1');
      const u2 = unique('u2');
      const [c1, ctx1] = await connected(u1);
      const [c2, ctx2] = await connected(u2);
      const [c3, ctx3] = await connected(u1); // second connection of the same user
      const [sub1] = await subscribed(c1, channel);
      await subscribed(c2, channel);
      await subscribed(c3, channel);

      const presence = await sub1.presence();
      assert.deepEqual(Object.keys(presence.clients).sort(), [ctx1.client, ctx2.client, ctx3.client].sort());
      assert.equal(presence.clients[ctx1.client].user, u1);
      assert.equal(presence.clients[ctx2.client].user, u2);
      assert.equal(presence.clients[ctx3.client].client, ctx3.client);
      assert.deepEqual(await sub1.presenceStats(), { numClients: 3, numUsers: 2 });

      c2.disconnect();
      await eventually(async () => (await sub1.presenceStats()).numClients === 2, 5000, 'presence after leave');
      assert.deepEqual(await c1.presenceStats(channel), { numClients: 2, numUsers: 1 });
    });

    it('history: limit, since, reverse, epoch mismatch', T, async () => {
      const channel = unique('hist');
      let epoch;
      for (let i = 1; i <= 10; i++) ({ epoch } = await server.publish(channel, { n: i }));
      const [c] = await connected(unique('reader'));
      const ns = (r) => r.publications.map((p) => decode(p.data).n);

      const top = await c.history(channel);
      assert.equal(top.publications.length, 0, 'no limit = position only');
      assert.equal(top.offset, 10);
      assert.equal(top.epoch, epoch);

      const first3 = await c.history(channel, { limit: 3 });
      assert.deepEqual(ns(first3), [1, 2, 3]);
      assert.deepEqual(first3.publications.map((p) => p.offset), [1, 2, 3]);
      assert.equal(first3.offset, 10);

      const all = await c.history(channel, { limit: -1 });
      assert.deepEqual(ns(all), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

      const since = await c.history(channel, { limit: 10, since: { offset: 7, epoch } });
      assert.deepEqual(ns(since), [8, 9, 10]);

      const atTop = await c.history(channel, { limit: 10, since: { offset: 10, epoch } });
      assert.deepEqual(ns(atTop), []);

      const newest = await c.history(channel, { limit: 3, reverse: true });
      assert.deepEqual(ns(newest), [10, 9, 8]);

      const before = await c.history(channel, { limit: 2, reverse: true, since: { offset: 5, epoch } });
      assert.deepEqual(ns(before), [4, 3]);

      await assert.rejects(
        c.history(channel, { limit: 5, since: { offset: 1, epoch: 'not-the-epoch' } }),
        (err) => err.code === 112,
      );
    });

    for (const drop of ['server disconnect 3011', 'socket cut under the SDK']) {
      it(`recovers missed publications after a dropped connection (${drop})`, T, async () => {
        const channel = unique('recover');
        const user = unique('rec');
        const c = client({ token: user, minReconnectDelay: 1500, maxReconnectDelay: 2000 });
        const sub = c.newSubscription(channel);
        const subs = collect(sub, 'subscribed');
        const pubs = collect(sub, 'publication');
        sub.subscribe();
        c.connect();
        await subs.until(1);
        for (let i = 1; i <= 3; i++) await server.publish(channel, { n: i });
        await pubs.until(3);
        const before = subs[0].streamPosition;

        const connecting = once(c, 'connecting');
        if (drop.startsWith('server')) {
          await server.disconnect(user);
          const ctx = await connecting;
          assert.equal(ctx.code, 3011);
        } else {
          c.sockets.at(-1).terminate();
          await connecting;
        }
        // The SDK saw the transport close: everything published now is missed.
        const missed = [];
        for (let i = 4; i <= 8; i++) missed.push(await server.publish(channel, { n: i }));
        assert.deepEqual(missed.map((r) => r.offset), [4, 5, 6, 7, 8]);

        await subs.until(2, 10000);
        const ctx = subs[1];
        assert.equal(ctx.wasRecovering, true);
        assert.equal(ctx.recovered, true);
        assert.equal(ctx.streamPosition.epoch, before.epoch);
        await pubs.until(8);
        assert.deepEqual(pubs.map((p) => decode(p.data).n), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert.deepEqual(pubs.map((p) => p.offset), [1, 2, 3, 4, 5, 6, 7, 8]);

        // And it is live again.
        await server.publish(channel, { n: 9 });
        await pubs.until(9);
        assert.deepEqual(decode(pubs[8].data), { n: 9 });
        assert.equal(pubs[8].offset, 9);
      });
    }

    it('RPC echo returns the data; unknown method fails with 104', T, async () => {
      const [c] = await connected(unique('rpc'));
      const result = await c.rpc('echo', encode({ ping: [1, 2, 3] }));
      assert.deepEqual(decode(result.data), { ping: [1, 2, 3] });
      await assert.rejects(c.rpc('nope', encode({})), (err) => {
        assert.equal(err.code, 104);
        assert.equal(err.message, 'method not found');
        return true;
      });
      // The connection stays usable after an error reply.
      const again = await c.rpc('echo', encode('still here'));
      assert.equal(decode(again.data), 'still here');
    });

    it('join and leave events', T, async () => {
      const channel = unique('party');
      const [a, actx] = await connected(unique('host'));
      const guest = unique('guest');
      const [b, bctx] = await connected(guest);
      const subA = a.newSubscription(channel);
      const joins = collect(subA, 'join');
      const leaves = collect(subA, 'leave');
      subA.subscribe();
      await eventually(() => joins.some((j) => j.info.client === actx.client), 5000, 'own join');

      const subB = b.newSubscription(channel);
      subB.subscribe();
      await eventually(() => joins.find((j) => j.info.client === bctx.client), 5000, 'guest join');
      const join = joins.find((j) => j.info.client === bctx.client);
      assert.equal(join.channel, channel);
      assert.equal(join.info.user, guest);

      subB.unsubscribe();
      await leaves.until(1);
      assert.equal(leaves[0].channel, channel);
      assert.equal(leaves[0].info.client, bctx.client);
      assert.equal(leaves[0].info.user, guest);

      // A disconnect of a subscribed client is a leave too.
      subB.subscribe();
      await eventually(() => joins.filter((j) => j.info.client === bctx.client).length === 2, 5000, 'rejoin');
      b.disconnect();
      await leaves.until(2);
      assert.equal(leaves[1].info.client, bctx.client);
    });
  });
}
