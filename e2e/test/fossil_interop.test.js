'use strict';
// Gyre's fossil delta encoder against the npm `fossil-delta` package (the format's JS
// implementation): deltas made by `gyre-fossil` (GYRE_FOSSIL, else the testkit binary in
// $CARGO_TARGET_DIR/debug) for random and real payloads must apply byte-exactly, and the
// package's own applier must agree with the SDK's (centrifuge-js ships its own copy).

const { it } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const fossil = require('fossil-delta');

const { binary } = require('../lib/harness');

/** A deterministic pseudo-random generator (xorshift32), so a failure can be replayed. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** `source` with a few random edits: replaced, inserted and deleted runs. */
function edit(source, random) {
  let out = Buffer.from(source);
  const edits = 1 + Math.floor(random() * 6);
  for (let e = 0; e < edits; e += 1) {
    const at = Math.floor(random() * (out.length + 1));
    const len = Math.floor(random() * 40);
    const fresh = crypto.randomBytes(Math.floor(random() * 40));
    const kind = Math.floor(random() * 3);
    if (kind === 0) out = Buffer.concat([out.subarray(0, at), fresh, out.subarray(at + len)]);
    else if (kind === 1) out = Buffer.concat([out.subarray(0, at), fresh, out.subarray(at)]);
    else out = Buffer.concat([out.subarray(0, at), out.subarray(at + len)]);
  }
  return out;
}

/** Real payloads: the JSON and JS files of the installed packages, and their edits. */
function realPairs(random, limit) {
  const root = path.join(__dirname, '..', 'node_modules');
  const files = [];
  const walk = (dir, depth) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (files.length >= limit) return;
      const p = path.join(dir, entry.name);
      if (entry.isDirectory() && depth < 3) walk(p, depth + 1);
      else if (entry.isFile() && /\.(json|js)$/.test(entry.name)) {
        const data = fs.readFileSync(p);
        if (data.length > 0 && data.length < 200000) files.push(data);
      }
    }
  };
  walk(root, 0);
  const pairs = [];
  for (let i = 0; i < files.length; i += 1) {
    pairs.push([files[i], edit(files[i], random)]);
    // Unrelated documents too: the delta is then mostly literal bytes.
    pairs.push([files[i], files[(i + 1) % files.length]]);
  }
  return pairs;
}

function randomPairs(random, count) {
  const pairs = [];
  for (let i = 0; i < count; i += 1) {
    const size = Math.floor(random() * (i % 10 === 0 ? 20000 : 600));
    // Low-entropy sources repeat themselves, which exercises the copy commands.
    const source =
      i % 2 === 0
        ? crypto.randomBytes(size)
        : Buffer.from('abcabcabd'.repeat(Math.ceil(size / 9)).slice(0, size));
    pairs.push([source, random() < 0.1 ? Buffer.alloc(0) : edit(source, random)]);
  }
  pairs.push([Buffer.alloc(0), Buffer.alloc(0)]);
  pairs.push([Buffer.alloc(0), Buffer.from('from nothing')]);
  pairs.push([Buffer.from('to nothing'), Buffer.alloc(0)]);
  return pairs;
}

function gyreDeltas(pairs) {
  const input = pairs.map(([s, t]) => `${s.toString('hex')} ${t.toString('hex')}\n`).join('');
  const out = execFileSync(binary('GYRE_FOSSIL', 'gyre-fossil'), [], {
    input,
    maxBuffer: 1 << 30,
  });
  const lines = out.toString().split('\n');
  lines.pop();
  assert.equal(lines.length, pairs.length);
  return lines.map((hex) => Buffer.from(hex, 'hex'));
}

it('npm fossil-delta applies Gyre deltas byte-exactly (random and real payloads)', { timeout: 120000 }, () => {
  const random = rng(0x5eed);
  const pairs = [...randomPairs(random, 2000), ...realPairs(random, 300)];
  const deltas = gyreDeltas(pairs);
  let deltaBytes = 0;
  let targetBytes = 0;
  for (let i = 0; i < pairs.length; i += 1) {
    const [source, target] = pairs[i];
    const applied = Buffer.from(fossil.applyDelta(source, deltas[i]));
    assert.ok(applied.equals(target), `pair ${i}: ${source.length} -> ${target.length} bytes`);
    assert.equal(fossil.getDeltaTargetSize(deltas[i]), target.length, `pair ${i}`);
    deltaBytes += deltas[i].length;
    targetBytes += target.length;
  }
  // Edited documents compress well; a broken match search would send everything literally.
  assert.ok(deltaBytes < targetBytes, `${deltaBytes} delta bytes for ${targetBytes} target bytes`);
  console.log(`# ${pairs.length} pairs: ${deltaBytes} delta bytes for ${targetBytes} target bytes`);
});
