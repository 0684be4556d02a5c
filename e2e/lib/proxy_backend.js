'use strict';
// An application backend for Centrifugo's event proxies, both flavours at once: a Node
// http server (`http://127.0.0.1:<port>/<event>`, JSON POST) and a @grpc/grpc-js server
// implementing `centrifugal.centrifugo.proxy.CentrifugoProxy` from the repository's
// proto/proxy.proto (`grpc://127.0.0.1:<port>`). Both answer from one table of scripted
// answers written in the JSON shape of the HTTP flavour, and record every request in that
// shape (payload bytes of gRPC requests as the JSON they hold) with its headers/metadata.

const http = require('node:http');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const { REPO } = require('./harness');

// gRPC method → event.
const METHODS = {
  Connect: 'connect',
  Refresh: 'refresh',
  Subscribe: 'subscribe',
  Publish: 'publish',
  RPC: 'rpc',
  SubRefresh: 'sub_refresh',
  MapPublish: 'map_publish',
  MapRemove: 'map_remove',
  // Shared poll.
  SharedPollRefresh: 'shared_poll_refresh',
};

// Payload fields that are `bytes` in proxy.proto (JSON values over HTTP).
const PAYLOAD_FIELDS = new Set(['data', 'info', 'meta']);

/** What answers of an event are keyed by (as in compat/python/proxy_backend.py). */
function keyOf(event, body) {
  if (event === 'connect') return body.data && typeof body.data === 'object' ? body.data.key : undefined;
  if (event === 'refresh') return body.user;
  if (event === 'rpc') return body.method;
  return body.channel;
}

/** A JSON-shaped answer as a protobuf-ready object: payload fields as JSON bytes. */
function toGrpc(value) {
  if (Array.isArray(value)) return value.map(toGrpc);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = PAYLOAD_FIELDS.has(k) ? Buffer.from(JSON.stringify(v)) : toGrpc(v);
  }
  return out;
}

/** A decoded gRPC request in the JSON shape: payload bytes parsed as JSON. */
function fromGrpc(value) {
  if (Buffer.isBuffer(value)) {
    const text = value.toString('utf8');
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  if (Array.isArray(value)) return value.map(fromGrpc);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = fromGrpc(v);
  return out;
}

class ProxyBackend {
  constructor() {
    this.answers = new Map();
    this.log = [];
    this.waiters = [];
  }

  /** Starts both servers on free 127.0.0.1 ports. */
  async start() {
    this.http = http.createServer((req, res) => this.onHttp(req, res));
    await new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(0, '127.0.0.1', resolve);
    });
    this.httpPort = this.http.address().port;

    const definition = protoLoader.loadSync(path.join(REPO, 'proto', 'proxy.proto'), {
      keepCase: true,
      longs: Number,
      defaults: false,
    });
    const pkg = grpc.loadPackageDefinition(definition);
    const service = pkg.centrifugal.centrifugo.proxy.CentrifugoProxy.service;
    this.grpc = new grpc.Server();
    const impl = {};
    for (const [method, event] of Object.entries(METHODS)) {
      impl[method] = (call, callback) => this.onGrpc(event, call, callback);
    }
    this.grpc.addService(service, impl);
    this.grpcPort = await new Promise((resolve, reject) => {
      this.grpc.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    return this;
  }

  async stop() {
    await new Promise((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    this.grpc.forceShutdown();
  }

  /** The `endpoint` of a proxy for `event` in `flavour` (`http` or `grpc`). */
  endpoint(flavour, event) {
    return flavour === 'http'
      ? `http://127.0.0.1:${this.httpPort}/${event}`
      : `grpc://127.0.0.1:${this.grpcPort}`;
  }

  /** Scripts the answer of `event` for `key` (or, with no key, for every other request). */
  answer(event, value, key) {
    this.answers.set(`${event}\u0000${key ?? ''}`, value);
  }

  /** Drops the request log: both flavours' tests use the same keys on one backend. */
  forgetRequests() {
    this.log = [];
  }

  requests(event, key) {
    return this.log.filter((r) => r.event === event && (key === undefined || r.key === key));
  }

  /** Resolves with the requests once `n` of `event` (and `key`) arrived; rejects after `timeoutMs`. */
  waitRequests(event, n, key, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const got = this.requests(event, key);
        if (got.length < n) return false;
        clearTimeout(timer);
        resolve(got);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`${this.requests(event, key).length} '${event}' requests of ${n} within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!waiter()) this.waiters.push(waiter);
      else clearTimeout(timer);
    });
  }

  record(event, flavour, body, headers) {
    const request = { event, flavour, body, headers, key: keyOf(event, body) };
    this.log.push(request);
    this.waiters = this.waiters.filter((w) => !w());
    let found = this.answers.get(`${event}\u0000${request.key ?? ''}`);
    if (found === undefined) found = this.answers.get(`${event}\u0000`);
    if (found === undefined) found = { result: {} };
    return typeof found === 'function' ? found(request) : found;
  }

  onHttp(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const event = req.url.replace(/^\//, '').split('?')[0];
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        body = {};
      }
      const headers = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = String(v);
      const answer = this.record(event, 'http', body, headers);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  }

  onGrpc(event, call, callback) {
    const headers = {};
    for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k.toLowerCase()] = String(v);
    const answer = this.record(event, 'grpc', fromGrpc(call.request), headers);
    callback(null, toGrpc(answer));
  }
}

module.exports = { ProxyBackend };
