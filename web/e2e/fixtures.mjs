// Fixture traces for the browser tests, as OTLP/HTTP JSON requests: a
// checkout trace across services with an error, an exception event, a
// huge attribute value and a link; the trace it links to; a fast and a
// slow trace of the same endpoint to compare; a generated 10,000-span
// trace; a spread of small traces for the result list and scatter plot;
// two of Jaeger's storage fixtures; and storefront traffic for the
// analysis pages (RED history, baselines, a deployment of a slower
// version, the anomaly it causes, and a trace for "why slow"). Times are
// relative to now, so the default search range (the last hour) holds them
// all. Deterministic for a given now.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export const ids = {
  checkout: '5b8efff798038103d269b633813fc60c',
  linked: '0af7651916cd43dd8448eb211c80319c',
  fast: 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1',
  slow: 'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2',
  big: 'c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3',
  missing: '0123456789abcdef0123456789abcdef',
  /** a storefront request whose stock call is slow, with an N+1 of SELECT item: "why slow" finds both */
  slowCart: 'd4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4',
};

export const spans = {
  checkoutRoot: '1000000000000001',
  charge: '1000000000000004',
  dbQuery: '1000000000000005',
  linkedRoot: '2000000000000001',
  slowStock: '4000000000000004',
};

/** The service whose new version (2.0.0, after 1.4.2) is slower: a deploy verdict and a latency anomaly. */
export const storefront = { service: 'storefront', operation: 'GET /cart', oldVersion: '1.4.2', newVersion: '2.0.0' };

export const hugeValueLength = 5000;

// A small deterministic PRNG (mulberry32).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const attr = (key, v) =>
  typeof v === 'number'
    ? Number.isInteger(v)
      ? { key, value: { intValue: String(v) } }
      : { key, value: { doubleValue: v } }
    : typeof v === 'boolean'
      ? { key, value: { boolValue: v } }
      : { key, value: { stringValue: String(v) } };

const attrs = (o) => Object.entries(o ?? {}).map(([k, v]) => attr(k, v));
const hex = (n, w) => n.toString(16).padStart(w, '0');

/**
 * Trace collects spans and renders OTLP JSON requests grouped by service.
 * Times are ns as BigInt.
 */
class Trace {
  constructor(traceId, version = '1.4.2') {
    this.traceId = traceId;
    this.version = version;
    this.spans = [];
  }
  add({ id, parent = '', service, version, name, kind = 1, start, dur, attributes, events, links, error, message }) {
    this.spans.push({
      service,
      version: version ?? this.version,
      span: {
        traceId: this.traceId,
        spanId: id,
        ...(parent ? { parentSpanId: parent } : {}),
        name,
        kind,
        startTimeUnixNano: String(start),
        endTimeUnixNano: String(start + BigInt(Math.round(dur))),
        attributes: attrs(attributes),
        events: (events ?? []).map((e) => ({ timeUnixNano: String(e.time), name: e.name, attributes: attrs(e.attributes) })),
        links: (links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId, attributes: attrs(l.attributes) })),
        status: error ? { code: 2, message: message ?? '' } : {},
      },
    });
    return id;
  }
  /** requests renders the spans as OTLP JSON bodies of at most per spans each. */
  requests(per = 2500) {
    const out = [];
    for (let i = 0; i < this.spans.length; i += per) {
      const by = new Map();
      for (const s of this.spans.slice(i, i + per)) {
        const k = `${s.service}\u0000${s.version}`;
        if (!by.has(k)) by.set(k, []);
        by.get(k).push(s.span);
      }
      out.push({
        resourceSpans: [...by].map(([k, spans]) => {
          const [service, version] = k.split('\u0000');
          return {
            resource: { attributes: attrs({ 'service.name': service, 'service.version': version, 'host.name': `${service}-${version === '1.4.2' ? '7d9f' : '8a1c'}` }) },
            scopeSpans: [{ scope: { name: 'clew.e2e', version: '1.0' }, spans }],
          };
        }),
      });
    }
    return out;
  }
}

const ms = 1_000_000n;

function checkoutTrace(t0) {
  const t = new Trace(ids.checkout);
  const stack = Array.from({ length: 40 }, (_, i) => `    at com.shop.payment.Charger.step${i}(Charger.java:${100 + i})`).join('\n');
  t.add({ id: spans.checkoutRoot, service: 'frontend', name: 'GET /checkout', kind: 2, start: t0, dur: 180e6, attributes: { 'http.request.method': 'GET', 'http.route': '/checkout', 'http.response.status_code': 500 }, error: true, message: 'checkout failed' });
  t.add({ id: '1000000000000002', parent: spans.checkoutRoot, service: 'frontend', name: 'POST /cart', kind: 3, start: t0 + 5n * ms, dur: 160e6, attributes: { 'http.request.method': 'POST', 'server.address': 'checkout' } });
  t.add({ id: '1000000000000003', parent: '1000000000000002', service: 'checkout', name: 'POST /cart', kind: 2, start: t0 + 7n * ms, dur: 155e6, attributes: { 'http.request.method': 'POST', 'http.route': '/cart' } });
  t.add({
    id: spans.dbQuery,
    parent: '1000000000000003',
    service: 'checkout',
    name: 'SELECT cart',
    kind: 3,
    start: t0 + 10n * ms,
    dur: 30e6,
    attributes: { 'db.system': 'postgresql', 'db.statement': 'SELECT * FROM cart WHERE id IN (' + Array.from({ length: 1200 }, (_, i) => i).join(', ').slice(0, hugeValueLength - 40) + ')' },
  });
  t.add({
    id: spans.charge,
    parent: '1000000000000003',
    service: 'payment',
    name: 'charge',
    kind: 2,
    start: t0 + 45n * ms,
    dur: 110e6,
    attributes: { 'payment.method': 'card', amount: 12.5 },
    events: [
      { time: t0 + 60n * ms, name: 'retry', attributes: { attempt: 1 } },
      { time: t0 + 150n * ms, name: 'exception', attributes: { 'exception.type': 'CardDeclinedException', 'exception.message': 'card declined: insufficient funds', 'exception.stacktrace': `com.shop.payment.CardDeclinedException: card declined\n${stack}` } },
    ],
    links: [{ traceId: ids.linked, spanId: spans.linkedRoot, attributes: { 'link.reason': 'refund job' } }],
    error: true,
    message: 'card declined',
  });
  t.add({ id: '1000000000000006', parent: '1000000000000003', service: 'checkout', name: 'publish order', kind: 4, start: t0 + 150n * ms, dur: 5e6, attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders' } });
  return t;
}

function linkedTrace(t0) {
  const t = new Trace(ids.linked);
  t.add({ id: spans.linkedRoot, service: 'worker', name: 'process refund', kind: 5, start: t0, dur: 40e6, attributes: { 'messaging.system': 'kafka' } });
  t.add({ id: '2000000000000002', parent: spans.linkedRoot, service: 'worker', name: 'UPDATE refunds', kind: 3, start: t0 + 5n * ms, dur: 20e6, attributes: { 'db.system': 'postgresql' } });
  return t;
}

/** compareTraces builds the same endpoint twice: in the slow one a query is slower, a cache call is gone and a retry appeared. */
function compareTraces(t0) {
  const fast = new Trace(ids.fast);
  const slow = new Trace(ids.slow);
  fast.add({ id: 'a000000000000001', service: 'shop', name: 'GET /product', kind: 2, start: t0, dur: 60e6 });
  fast.add({ id: 'a000000000000002', parent: 'a000000000000001', service: 'shop', name: 'cache get', kind: 3, start: t0 + 1n * ms, dur: 2e6, attributes: { 'db.system': 'redis' } });
  fast.add({ id: 'a000000000000003', parent: 'a000000000000001', service: 'catalog', name: 'SELECT product', kind: 3, start: t0 + 4n * ms, dur: 20e6, attributes: { 'db.system': 'postgresql' } });
  fast.add({ id: 'a000000000000004', parent: 'a000000000000001', service: 'pricing', name: 'GET /price', kind: 2, start: t0 + 26n * ms, dur: 30e6 });
  const s0 = t0 + 2000n * ms;
  slow.add({ id: 'b000000000000001', service: 'shop', name: 'GET /product', kind: 2, start: s0, dur: 260e6 });
  slow.add({ id: 'b000000000000003', parent: 'b000000000000001', service: 'catalog', name: 'SELECT product', kind: 3, start: s0 + 4n * ms, dur: 180e6, attributes: { 'db.system': 'postgresql' } });
  slow.add({ id: 'b000000000000004', parent: 'b000000000000001', service: 'pricing', name: 'GET /price', kind: 2, start: s0 + 186n * ms, dur: 31e6 });
  slow.add({ id: 'b000000000000005', parent: 'b000000000000001', service: 'pricing', name: 'GET /price retry', kind: 2, start: s0 + 220n * ms, dur: 35e6, error: true });
  return [fast, slow];
}

/** bigTrace generates n spans: 8 services, fan-out at every level, depth up to 12. */
function bigTrace(t0, n = 10_000) {
  const r = rng(42);
  const t = new Trace(ids.big);
  const services = ['gateway', 'orders', 'inventory', 'pricing', 'users', 'search', 'recommend', 'billing'];
  const ops = ['GET /items', 'load', 'query', 'render', 'fetch', 'compute', 'SELECT rows', 'cache get', 'publish', 'validate'];
  let next = 1;
  const id = () => hex(0xd000000000000000n + BigInt(next++), 16);
  const rootId = id();
  t.add({ id: rootId, service: 'gateway', name: 'GET /big-report', kind: 2, start: t0, dur: 4000e6, attributes: { 'http.route': '/big-report' } });
  // Calls go down the list of services (a child stays in its parent's
  // service, or calls one further down), as in a real system; spans are
  // internal, so the trace adds no random edges to the service graph.
  const queue = [{ id: rootId, start: t0, dur: 4000e6, depth: 0, svc: 0 }];
  while (t.spans.length < n && queue.length) {
    const p = queue.shift();
    const kids = p.depth === 0 ? 40 : Math.min(n - t.spans.length, 1 + Math.floor(r() * (p.depth < 4 ? 8 : 4)));
    const slot = p.dur / (kids + 1);
    for (let k = 0; k < kids && t.spans.length < n; k++) {
      const start = p.start + BigInt(Math.round(slot * k * 0.9 + r() * slot * 0.2));
      const dur = Math.max(1000, slot * (0.4 + r() * 0.9));
      const err = r() < 0.01;
      const svc = r() < 0.6 || p.svc === services.length - 1 ? p.svc : p.svc + 1 + Math.floor(r() * (services.length - 1 - p.svc));
      const cid = t.add({
        id: id(),
        parent: p.id,
        service: services[svc],
        name: ops[Math.floor(r() * ops.length)],
        kind: 1,
        start,
        dur,
        attributes: { 'e2e.index': next, 'e2e.depth': p.depth + 1 },
        error: err,
        message: err ? 'synthetic failure' : undefined,
      });
      if (p.depth < 11) queue.push({ id: cid, start, dur, depth: p.depth + 1, svc });
    }
  }
  return t;
}

/** spreadTraces are small traces over the last half hour, some with errors. */
function spreadTraces(nowNs, n = 30) {
  const r = rng(7);
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = new Trace(hex(0xe0000000 + i, 8).padStart(32, 'e'));
    const start = nowNs - BigInt(Math.round((5 + r() * 25) * 60e3)) * ms;
    const dur = Math.round(Math.exp(r() * 6) * 1e6);
    const err = i % 7 === 3;
    const root = hex(0xf000000000000000n + BigInt(i * 10 + 1), 16);
    t.add({ id: root, service: 'api', name: i % 2 ? 'GET /items' : 'GET /users', kind: 2, start, dur, attributes: { 'http.response.status_code': err ? 503 : 200, 'user.tier': i % 3 ? 'free' : 'pro' }, error: err });
    t.add({ id: hex(0xf000000000000000n + BigInt(i * 10 + 2), 16), parent: root, service: 'api', name: 'call db', kind: 3, start: start + 1n * ms / 10n, dur: dur * 0.6 });
    t.add({ id: hex(0xf000000000000000n + BigInt(i * 10 + 3), 16), parent: hex(0xf000000000000000n + BigInt(i * 10 + 2), 16), service: 'db', name: 'query', kind: 2, start: start + 2n * ms / 10n, dur: dur * 0.5, error: err });
    out.push(t);
  }
  return out;
}

/** jaegerFixtures loads Jaeger's OTLP JSON fixtures with times moved to nowNs minus 20 minutes. */
function jaegerFixtures(nowNs) {
  const out = [];
  for (const f of ['example_trace.json', 'link_attributes_trace.json']) {
    const j = JSON.parse(readFileSync(join(here, 'fixtures', 'jaeger', f), 'utf8'));
    let min = null;
    const visit = (o, fn) => {
      if (Array.isArray(o)) o.forEach((x) => visit(x, fn));
      else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) k.endsWith('UnixNano') && typeof v === 'string' ? fn(o, k) : visit(v, fn);
    };
    visit(j, (o, k) => {
      const v = BigInt(o[k]);
      if (min === null || v < min) min = v;
    });
    const shift = nowNs - 20n * 60_000n * ms - min;
    visit(j, (o, k) => (o[k] = String(BigInt(o[k]) + shift)));
    out.push(j);
  }
  return out;
}

/**
 * storefrontTraffic is a steady load on storefront "GET /cart" (calling a
 * database and the stock service) at version 1.4.2 from 24 to 4 minutes
 * ago, 10 requests a minute, then version 2.0.0 from 110 to 64 seconds
 * ago (inside the detector's 3-minute test window), 30 requests, which runs "SELECT promotions" six times one after
 * another (about 60 ms more) and fails a few times with a new error. It
 * gives the RED history and baselines, a deployment with a verdict and,
 * when the detector sees it, a latency anomaly; plus slowCart, a request
 * 8 minutes ago whose stock call is slow and loops over SELECT item.
 */
function storefrontTraffic(nowNs) {
  const r = rng(99);
  const out = [];
  const minute = 60_000n * ms;
  let n = 0;
  const one = (start, version, { promos = 0, error = false } = {}) => {
    n++;
    const t = new Trace(hex(0xd0000000 + n, 8).padStart(32, 'd'), version);
    const sid = (k) => hex(0x3000000000000000n + BigInt(n * 32 + k), 16);
    const db = 3e6 + r() * 4e6;
    const stock = 8e6 + r() * 10e6;
    const promo = promos ? 8e6 + r() * 4e6 : 0;
    const own = 4e6 + r() * 4e6;
    const dur = own + db + stock + promos * promo;
    t.add({ id: sid(1), service: storefront.service, name: storefront.operation, kind: 2, start, dur, attributes: { 'http.request.method': 'GET', 'http.route': '/cart', 'http.response.status_code': error ? 500 : 200, 'user.tier': r() < 0.3 ? 'pro' : 'free' }, error, message: error ? 'promotions: rule set is nil' : undefined });
    let at = start + 1n * ms;
    t.add({ id: sid(2), parent: sid(1), service: storefront.service, name: 'SELECT cart', kind: 3, start: at, dur: db, attributes: { 'db.system.name': 'postgresql', 'db.query.text': 'SELECT * FROM cart WHERE user_id = $1' } });
    at += BigInt(Math.round(db));
    t.add({ id: sid(3), parent: sid(1), service: storefront.service, name: 'GET /stock', kind: 3, start: at, dur: stock, attributes: { 'http.request.method': 'GET', 'server.address': 'stock' } });
    t.add({ id: sid(4), parent: sid(3), service: 'stock', version: '1.4.2', name: 'GET /stock', kind: 2, start: at + 500_000n, dur: stock - 1e6, attributes: { 'http.request.method': 'GET', 'http.route': '/stock' } });
    at += BigInt(Math.round(stock));
    for (let k = 0; k < promos; k++) {
      t.add({ id: sid(5 + k), parent: sid(1), service: storefront.service, name: 'SELECT promotions', kind: 3, start: at, dur: promo, attributes: { 'db.system.name': 'postgresql', 'db.query.text': 'SELECT * FROM promotions WHERE sku = $1' } });
      at += BigInt(Math.round(promo));
    }
    out.push(t);
  };
  for (let m = 24; m >= 5; m--) for (let k = 0; k < 10; k++) one(nowNs - BigInt(m) * minute + BigInt(Math.round((k + r()) * 6e3)) * ms, storefront.oldVersion);
  for (let k = 0; k < 30; k++) one(nowNs - (110_000n - BigInt(k * 1600)) * ms, storefront.newVersion, { promos: 6, error: k % 8 === 5 });
  // The slow request: stock takes 250 ms, 7 SELECT item calls in a row.
  const t = new Trace(ids.slowCart);
  const s0 = nowNs - 8n * minute;
  t.add({ id: '4000000000000001', service: storefront.service, name: storefront.operation, kind: 2, start: s0, dur: 275e6, attributes: { 'http.request.method': 'GET', 'http.route': '/cart', 'http.response.status_code': 200, 'user.tier': 'free' } });
  t.add({ id: '4000000000000002', parent: '4000000000000001', service: storefront.service, name: 'SELECT cart', kind: 3, start: s0 + 1n * ms, dur: 5e6, attributes: { 'db.system.name': 'postgresql', 'db.query.text': 'SELECT * FROM cart WHERE user_id = $1' } });
  t.add({ id: '4000000000000003', parent: '4000000000000001', service: storefront.service, name: 'GET /stock', kind: 3, start: s0 + 6n * ms, dur: 262e6, attributes: { 'http.request.method': 'GET', 'server.address': 'stock' } });
  t.add({ id: spans.slowStock, parent: '4000000000000003', service: 'stock', name: 'GET /stock', kind: 2, start: s0 + 7n * ms, dur: 260e6, attributes: { 'http.request.method': 'GET', 'http.route': '/stock' } });
  for (let k = 0; k < 7; k++) t.add({ id: hex(0x4000000000000010n + BigInt(k), 16), parent: spans.slowStock, service: 'stock', name: 'SELECT item', kind: 3, start: s0 + BigInt(10 + k * 3) * ms, dur: 2.5e6, attributes: { 'db.system.name': 'postgresql', 'db.query.text': 'SELECT * FROM item WHERE id = $1' } });
  out.push(t);
  // One request per batch of traces, as an SDK's exporter sends them.
  const all = new Trace('');
  all.spans = out.flatMap((x) => x.spans);
  return all.requests(2000);
}

export function buildFixtures(nowMs = Date.now()) {
  const nowNs = BigInt(Math.floor(nowMs)) * ms;
  // The storefront traffic goes first: the detector reads each minute of
  // the RED history once, so it must be there before its first evaluation.
  const requests = [...storefrontTraffic(nowNs)];
  const [fast, slow] = compareTraces(nowNs - 3n * 60_000n * ms);
  const big = bigTrace(nowNs - 4n * 60_000n * ms);
  for (const t of [checkoutTrace(nowNs - 60_000n * ms), linkedTrace(nowNs - 90_000n * ms), fast, slow, big, ...spreadTraces(nowNs)]) requests.push(...t.requests());
  requests.push(...jaegerFixtures(nowNs));
  return { requests, bigSpans: big.spans.length };
}
