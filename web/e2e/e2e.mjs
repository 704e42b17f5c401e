// Browser tests of clew's web UI against the real binary: start `clew
// serve` on loopback ports in a temporary data directory, load the fixture
// traces over OTLP/HTTP JSON, then drive Debian's chromium with
// playwright-core through every page: search (builder, TraceQL editor with
// autocomplete and inline errors, paging, scatter plot), the trace view
// (waterfall, critical path, span details, links, collapse, find, flame
// graph, summary, keyboard, why slow), the 10,000-span trace within its
// budget, compare, the service map, the analysis pages (services with
// RED and baseline bands, the aggregated critical path, anomalies,
// deployments, attribute ranking, instrumentation quality), deep links,
// themes, the tenant setting (against a second clew with multitenancy and
// a token), and the error states (missing trace, bad ID, empty result,
// slow server, server down, detection off).
//
// Usage: node web/e2e/e2e.mjs --clew PATH [--artifacts DIR] [--chromium PATH]
// (web/e2e/run.sh builds the binary with the UI and runs this.)
// Prints one line per check, the measured numbers, and "N passed, N failed".

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { buildFixtures, hugeValueLength, ids, spans, storefront } from './fixtures.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const clewBin = resolve(args.clew ?? 'bin/clew');
const artifacts = resolve(args.artifacts ?? 'web/e2e/artifacts');
const chromiumPath = args.chromium ?? process.env.CHROMIUM ?? '/usr/bin/chromium';
const RENDER_BUDGET_MS = Number(process.env.RENDER_BUDGET_MS ?? 1000);
mkdirSync(artifacts, { recursive: true });

const results = [];
const metrics = {};
let shot = 0;

function log(...a) {
  console.log(...a);
}

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, err: e });
    log(`FAIL ${name} (${Date.now() - t0} ms)\n     ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n     ')}`);
    try {
      await snap(page, `FAILED-${name}`);
    } catch {}
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function snap(p, name) {
  const file = join(artifacts, `${String(++shot).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
  await p.screenshot({ path: file, fullPage: false });
}

// --- clew ---------------------------------------------------------------

const dataDir = mkdtempSync(join(tmpdir(), 'clew-ui-e2e-'));
// The detector evaluates every 5 s instead of 15 s, so that the anomaly
// and the deployment in the fixtures are raised within the run.
const configDir = mkdtempSync(join(tmpdir(), 'clew-ui-e2e-config-'));
const configFile = join(configDir, 'clew.yaml');
writeFileSync(configFile, 'detect:\n  interval: 5s\n');
let clew;
let clewLog = '';

/** freePorts finds n free loopback ports (the kernel picks them; clew binds them right after). */
async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise((res) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => res(s));
    })),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * startClew starts `clew serve` on fresh loopback ports, by default the
 * run's clew (the global clew), or another with its own configuration file,
 * data directory and flags (opts.config, opts.dir, opts.extra); it returns
 * the query and OTLP/HTTP base URLs and the process.
 */
async function startClew(opts = {}) {
  const [pg, ph, pq] = await freePorts(3);
  let out = '';
  const proc = spawn(
    clewBin,
    ['serve', '--config', opts.config ?? configFile, '--data-dir', opts.dir ?? dataDir, '--otlp-grpc-addr', `127.0.0.1:${pg}`, '--otlp-http-addr', `127.0.0.1:${ph}`, '--http-addr', `127.0.0.1:${pq}`, '--zipkin-addr', '', '--jaeger-grpc-addr', '', '--jaeger-http-addr', '', '--log-format', 'json', ...(opts.extra ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (!opts.config) clew = proc;
  const addrs = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`clew did not start in 30 s:\n${out}`)), 30_000);
    const onData = (b) => {
      out += b.toString();
      if (proc === clew) clewLog = out;
      for (const line of out.split('\n')) {
        if (!line.includes('"clew serving"')) continue;
        try {
          const j = JSON.parse(line);
          clearTimeout(timer);
          res({ http: j.http, otlp: j.otlp_http });
          return;
        } catch {}
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => rej(new Error(`clew exited with ${code}:\n${out}`)));
  });
  const base = `http://${addrs.http}`;
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${base}/readyz`).catch(() => null);
    if (r?.ok) break;
    await new Promise((s) => setTimeout(s, 100));
  }
  return { base, otlp: `http://${addrs.otlp}`, proc };
}

function stopClew() {
  if (clew && clew.exitCode === null) clew.kill('SIGTERM');
}

process.on('exit', () => {
  stopClew();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(configDir, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** poll fetches an API answer until pick finds something in it (or the time is up), and returns the last answer. */
async function poll(path, pick, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    const r = await fetch(`${base}${path}`);
    const j = await r.json();
    if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(j)}`);
    if (pick(j) || Date.now() > until) return j;
    await sleep(500);
  }
}

// --- the run --------------------------------------------------------------

const { base, otlp } = await startClew();
log(`clew ${clewBin} serving ${base} (OTLP ${otlp}), data in ${dataDir}`);

const fx = buildFixtures();
{
  const t0 = Date.now();
  for (const body of fx.requests) {
    const r = await fetch(`${otlp}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`OTLP export: ${r.status} ${await r.text()}`);
  }
  log(`loaded ${fx.requests.length} OTLP requests (${fx.bigSpans} spans in the big trace) in ${Date.now() - t0} ms`);
}

const index = await (await fetch(`${base}/ui/`)).text();
if (index.includes('content="placeholder"')) {
  console.error('The binary serves the placeholder page: build the UI first (make ui) and rebuild clew.');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: 'light' });
let page = await context.newPage();
const consoleErrors = [];
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const url = (path) => `${base}/ui/${path}`;
const qEnc = encodeURIComponent;

await check('root redirects to the UI', async () => {
  const r = await fetch(`${base}/`, { redirect: 'manual' });
  assert(r.status === 302 && r.headers.get('location') === '/ui/', `GET / = ${r.status} to ${r.headers.get('location')}`);
  const txt = await (await fetch(`${base}/index.txt`)).text();
  assert(txt.includes('Native query API'), 'plain-text index at /index.txt');
});

await check('search page lists traces newest first with a scatter plot', async () => {
  await page.goto(url(''));
  await page.waitForSelector('[data-testid=results] tbody tr');
  const rows = await page.$$eval('[data-testid=results] tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-trace-id')));
  assert(rows.length === 20, `page of 20 rows, got ${rows.length}`);
  const total = (await (await fetch(`${base}/api/v1/search?since=1h&limit=1`)).json()).total;
  const count = await page.textContent('[data-testid=result-count]');
  assert(total >= 35 && count.startsWith(`${total} traces`), `total count shown: ${count}, API total ${total}`);
  const points = await page.$$('[data-testid=scatter] circle.pt');
  assert(points.length === 20, `scatter points: ${points.length}`);
  const errPoints = await page.$$('[data-testid=scatter] circle.pt.err');
  assert(errPoints.length >= 1, 'error points are marked');
  await snap(page, 'search-default');
});

await check('builder writes TraceQL and runs it', async () => {
  await page.goto(url('search?mode=builder'));
  await page.fill('input[name=service]', 'frontend');
  await page.selectOption('select[name=status]', 'error');
  const preview = await page.textContent('[data-testid=builder-traceql]');
  assert(preview === '{ resource.service.name = "frontend" && status = error }', `preview: ${preview}`);
  await page.click('[data-testid=run-search]');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('q')?.includes('frontend'));
  await page.waitForSelector(`[data-testid=results] tr[data-trace-id="${ids.checkout}"]`);
  const n = await page.$$eval('[data-testid=results] tbody tr', (t) => t.length);
  assert(n === 1, `one error trace of frontend, got ${n}`);
  const cells = await page.textContent(`[data-testid=results] tr[data-trace-id="${ids.checkout}"]`);
  assert(cells.includes('GET /checkout') && cells.includes('payment'), `row shows root and services: ${cells}`);
  await snap(page, 'search-builder');
});

await check('TraceQL editor autocompletes attribute names and values', async () => {
  await page.goto(url('search?mode=traceql'));
  const ed = page.locator('#traceql');
  await ed.click();
  await ed.fill('');
  await ed.type('{ resource.serv');
  await page.waitForSelector('.tql-suggest li');
  const names = await page.$$eval('.tql-suggest li .label', (l) => l.map((x) => x.textContent));
  assert(names.includes('resource.service.name'), `attribute suggestions: ${names.slice(0, 8)}`);
  await page.keyboard.press('Enter');
  await ed.type('= "chec');
  await page.waitForFunction(() => [...document.querySelectorAll('.tql-suggest li .label')].some((l) => l.textContent === 'checkout'));
  await snap(page, 'traceql-autocomplete');
  await page.keyboard.press('Enter');
  const v = await ed.inputValue();
  assert(v.startsWith('{ resource.service.name = "checkout"'), `after completion: ${v}`);
  assert((await page.$$('.tql-highlight .tk-attr')).length >= 1 && (await page.$$('.tql-highlight .tk-string')).length >= 1, 'highlighted tokens');
  await ed.type('}');
  await page.keyboard.press('Enter');
  await page.waitForSelector(`[data-testid=results] tr[data-trace-id="${ids.checkout}"]`);
});

await check('a bad query shows the server message at its position', async () => {
  const q = '{ span.http.response.status_code >= }';
  await page.goto(url(`search?mode=traceql&q=${qEnc(q)}`));
  await page.waitForSelector('[data-testid=query-error]');
  const msg = await page.textContent('[data-testid=query-error]');
  assert(msg.includes('Line 1, column 37') && msg.includes('unexpected'), `error message: ${msg}`);
  const caret = await page.textContent('.tql-caret');
  assert(caret.split('\n')[1].indexOf('^') === 36, `caret under column 37: ${JSON.stringify(caret)}`);
  const marked = await page.textContent('.tql-highlight .tk-err');
  assert(marked === '}', `underlined text: ${marked}`);
  await snap(page, 'traceql-error');
});

await check('paging: older, newer and a deep link to page 2', async () => {
  await page.goto(url('search?limit=5'));
  await page.waitForSelector('[data-testid=results] tbody tr');
  const p1 = await page.$$eval('[data-testid=results] tbody tr', (t) => t.map((r) => r.getAttribute('data-trace-id')));
  await page.click('[data-testid=next-page]');
  await page.waitForFunction(() => new URLSearchParams(location.search).has('cursor'));
  await page.waitForFunction((first) => { const id = document.querySelector('[data-testid=results] tbody tr')?.getAttribute('data-trace-id'); return !!id && id !== first; }, p1[0]);
  const p2 = await page.$$eval('[data-testid=results] tbody tr', (t) => t.map((r) => r.getAttribute('data-trace-id')));
  assert(p2.length === 5 && p2.every((id) => !p1.includes(id)), `page 2 differs: ${p2}`);
  const deep = page.url();
  await page.click('text=← Newer');
  await page.waitForFunction((first) => document.querySelector('[data-testid=results] tbody tr')?.getAttribute('data-trace-id') === first, p1[0]);
  const p2b = await context.newPage();
  await p2b.goto(deep);
  await p2b.waitForSelector('[data-testid=results] tbody tr');
  const again = await p2b.$$eval('[data-testid=results] tbody tr', (t) => t.map((r) => r.getAttribute('data-trace-id')));
  assert(JSON.stringify(again) === JSON.stringify(p2), 'deep link restores page 2');
  await p2b.close();
});

await check('TraceQL paging (q=) continues without repeats', async () => {
  const q = '{ resource.service.name = "api" }';
  await page.goto(url(`search?mode=traceql&limit=10&q=${qEnc(q)}`));
  await page.waitForSelector('[data-testid=results] tbody tr');
  const count = await page.textContent('[data-testid=result-count]');
  assert(count.includes('+'), `lower-bound total marked: ${count}`);
  const p1 = await page.$$eval('[data-testid=results] tbody tr', (t) => t.map((r) => r.getAttribute('data-trace-id')));
  await page.click('[data-testid=next-page]');
  await page.waitForFunction((first) => { const id = document.querySelector('[data-testid=results] tbody tr')?.getAttribute('data-trace-id'); return !!id && id !== first; }, p1[0]);
  const p2 = await page.$$eval('[data-testid=results] tbody tr', (t) => t.map((r) => r.getAttribute('data-trace-id')));
  assert(p2.length === 10 && p2.every((id) => !p1.includes(id)), `TraceQL page 2: ${p2}`);
});

await check('clicking a scatter point opens its trace', async () => {
  await page.goto(url(`search?q=${qEnc('{ name = "GET /checkout" }')}`));
  await page.waitForSelector('[data-testid=scatter] circle.pt');
  await page.click('[data-testid=scatter] circle.pt');
  await page.waitForURL(`**/ui/trace/${ids.checkout}`);
  await page.waitForSelector('[data-testid=waterfall] .wf-row');
});

await check('trace view: waterfall, critical path, summary facts', async () => {
  await page.goto(url(`trace/${ids.checkout}`));
  await page.waitForSelector('[data-testid=waterfall] .wf-row');
  const rows = await page.$$('[data-testid=waterfall] .wf-row');
  assert(rows.length === 6, `6 span rows, got ${rows.length}`);
  assert((await page.textContent('[data-testid=trace-spans]')) === '6', 'span count');
  assert((await page.textContent('[data-testid=trace-duration]')) === '180 ms', 'duration');
  const cp = await page.$$('[data-testid=waterfall] .cp-seg');
  assert(cp.length >= 3, `critical path segments drawn: ${cp.length}`);
  const onPath = await page.$$eval('.wf-row.on-path', (r) => r.map((x) => x.getAttribute('data-span-id')));
  assert(onPath.includes(spans.charge) && onPath.includes(spans.checkoutRoot), `charge on the critical path: ${onPath}`);
  await snap(page, 'trace-waterfall');
});

await check('span detail: status, exception stack trace, huge value expands, link navigates', async () => {
  await page.goto(url(`trace/${ids.checkout}?span=${spans.charge}`));
  await page.waitForSelector('[data-testid=span-detail]');
  const status = await page.textContent('[data-testid=span-status]');
  assert(status.includes('error') && status.includes('card declined'), `status: ${status}`);
  const stack = await page.textContent('.span-detail .stack');
  assert(stack.includes('CardDeclinedException') && stack.includes('Show all'), 'stack trace shown, truncated');
  await snap(page, 'span-detail-exception');
  await page.goto(url(`trace/${ids.checkout}?span=${spans.dbQuery}`));
  await page.waitForSelector('[data-testid=span-detail]');
  const before = await page.$eval('.span-detail .attrs-table', (t) => [...t.querySelectorAll('tr')].find((r) => r.textContent.includes('db.statement')).querySelector('.attr-text').textContent.length);
  assert(before <= 302, `huge value truncated to ${before}`);
  await page.click('.span-detail button.expand');
  const after = await page.$eval('.span-detail .attrs-table', (t) => [...t.querySelectorAll('tr')].find((r) => r.textContent.includes('db.statement')).querySelector('.attr-text').textContent.length);
  assert(after >= hugeValueLength - 100, `expanded to ${after}`);
  await page.goto(url(`trace/${ids.checkout}?span=${spans.charge}`));
  await page.click('[data-testid=span-link]');
  await page.waitForURL(`**/ui/trace/${ids.linked}?span=${spans.linkedRoot}`);
  await page.waitForSelector(`.wf-row.selected[data-span-id="${spans.linkedRoot}"]`);
});

await check('collapse a subtree, deep link keeps it collapsed', async () => {
  await page.goto(url(`trace/${ids.checkout}`));
  await page.waitForSelector('.wf-row');
  await page.click(`.wf-row[data-span-id="1000000000000003"] button.toggle`);
  await page.waitForFunction(() => document.querySelectorAll('.wf-row').length === 3);
  const u = page.url();
  assert(new URL(u).searchParams.get('c') === '1000000000000003', `URL holds the collapsed span: ${u}`);
  await page.goto(u);
  await page.waitForSelector('.wf-row');
  assert((await page.$$('.wf-row')).length === 3, 'still collapsed after reload');
  await page.goto(url(`trace/${ids.checkout}?levels=1`));
  await page.waitForSelector('.wf-row');
  assert((await page.$$('.wf-row')).length === 1, 'levels=1 shows the root only');
});

await check('find in trace selects and reveals matches', async () => {
  await page.goto(url(`trace/${ids.checkout}?levels=1`));
  await page.waitForSelector('.wf-row');
  await page.fill('[data-testid=find-input]', 'CardDeclined');
  await page.press('[data-testid=find-input]', 'Enter');
  await page.waitForSelector('[data-testid=find-count]');
  await page.press('[data-testid=find-input]', 'Enter');
  await page.waitForSelector(`.wf-row.selected[data-span-id="${spans.charge}"]`);
  assert((await page.textContent('[data-testid=find-count]')).includes('1 of 1'), 'one match');
  await snap(page, 'trace-find');
});

await check('keyboard: arrows move the selection, left collapses', async () => {
  await page.goto(url(`trace/${ids.checkout}`));
  await page.waitForSelector('.wf-row');
  await page.focus('[data-testid=waterfall-body]');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('span') === '1000000000000002');
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(() => document.querySelectorAll('.wf-row').length === 2);
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !new URLSearchParams(location.search).get('span'));
});

await check('flame graph: canvas, click selects a span', async () => {
  await page.goto(url(`trace/${ids.checkout}?view=flame`));
  await page.waitForSelector('[data-testid=flame] canvas');
  const box = await page.locator('[data-testid=flame] canvas').boundingBox();
  await page.mouse.click(box.x + 40, box.y + 10);
  await page.waitForFunction((root) => new URLSearchParams(location.search).get('span') === root, spans.checkoutRoot);
  await snap(page, 'trace-flame');
});

await check('summary: services, depth, time per service', async () => {
  await page.goto(url(`trace/${ids.checkout}?view=summary`));
  await page.waitForSelector('[data-testid=trace-summary]');
  const txt = await page.textContent('[data-testid=trace-summary]');
  for (const s of ['frontend', 'checkout', 'payment']) assert(txt.includes(s), `service ${s} listed`);
  assert((await page.textContent('[data-testid=trace-depth]')) === '4', 'depth 4');
  await snap(page, 'trace-summary');
});

await check(`10,000-span trace renders within ${RENDER_BUDGET_MS} ms and scrolls smoothly`, async () => {
  const p = await context.newPage();
  p.on('pageerror', (e) => consoleErrors.push(String(e)));
  const times = [];
  for (let run = 0; run < 3; run++) {
    await p.goto(url(`trace/${ids.big}`));
    await p.waitForFunction(() => window.__clewTrace && window.__clewTrace.spans >= 10000, null, { timeout: 20_000 });
    times.push(await p.evaluate(() => window.__clewTrace));
  }
  // The median of three loads (the first also warms the server's caches).
  times.sort((a, b) => a.renderedAt - b.renderedAt);
  const t = times[1];
  metrics.bigTrace = { spans: t.spans, firstRenderMs: Math.round(t.renderedAt), allMs: times.map((x) => Math.round(x.renderedAt)), fetchMs: Math.round(t.fetchMs), parseMs: Math.round(t.parseMs), modelMs: Math.round(t.modelMs) };
  log(`     10k trace: first render ${metrics.bigTrace.firstRenderMs} ms after navigation (median of 3: ${metrics.bigTrace.allMs.join(', ')} ms): fetch ${metrics.bigTrace.fetchMs} ms, parse ${metrics.bigTrace.parseMs} ms, tree+critical path+summary ${metrics.bigTrace.modelMs} ms`);
  const domRows = await p.$$eval('.wf-row', (r) => r.length);
  assert(domRows < 150, `virtualized: ${domRows} rows in the DOM`);
  await snap(p, 'big-trace');
  // Scroll through the waterfall, one step per frame, and time the frames.
  const { frames, long } = await p.evaluate(
    () =>
      new Promise((res) => {
        const el = document.querySelector('[data-testid=waterfall-body]');
        const out = [];
        const long = [];
        const obs = new PerformanceObserver((l) => long.push(...l.getEntries().map((e) => e.duration)));
        obs.observe({ type: 'longtask' });
        let last = performance.now();
        let n = 0;
        const step = () => {
          const now = performance.now();
          out.push(now - last);
          last = now;
          el.scrollTop += 360;
          if (++n < 150) requestAnimationFrame(step);
          else
            setTimeout(() => {
              obs.disconnect();
              res({ frames: out.slice(1), long });
            }, 50);
        };
        requestAnimationFrame(step);
      }),
  );
  frames.sort((a, b) => a - b);
  const q = (x) => frames[Math.min(frames.length - 1, Math.floor(x * frames.length))];
  metrics.scroll = { frames: frames.length, p50Ms: +q(0.5).toFixed(1), p95Ms: +q(0.95).toFixed(1), maxMs: +frames[frames.length - 1].toFixed(1), longTasks: long.length, longTaskMs: Math.round(long.reduce((a, b) => a + b, 0)) };
  log(`     scrolling 150 frames of 15 rows: frame p50 ${metrics.scroll.p50Ms} ms, p95 ${metrics.scroll.p95Ms} ms, max ${metrics.scroll.maxMs} ms; ${long.length} long tasks (${metrics.scroll.longTaskMs} ms)`);
  const rowsAfter = await p.$$eval('.wf-row', (r) => r.length);
  assert(rowsAfter > 10 && rowsAfter < 150, `rows rendered after scrolling: ${rowsAfter}`);
  await snap(p, 'big-trace-scrolled');
  // The flame graph of the same trace.
  await p.goto(url(`trace/${ids.big}?view=flame`));
  await p.waitForFunction(() => window.__clewTrace && window.__clewTrace.spans >= 10000);
  metrics.bigFlameMs = Math.round(await p.evaluate(() => window.__clewTrace.renderedAt));
  log(`     10k trace flame graph shown at ${metrics.bigFlameMs} ms`);
  await snap(p, 'big-trace-flame');
  await p.close();
  assert(t.renderedAt < RENDER_BUDGET_MS, `first render ${Math.round(t.renderedAt)} ms is over the ${RENDER_BUDGET_MS} ms budget`);
  assert(metrics.scroll.p95Ms < 120, `scrolling p95 frame ${metrics.scroll.p95Ms} ms`);
});

await check('compare: aligned spans marked slower, added and removed', async () => {
  await page.goto(url(`compare?a=${ids.fast}&b=${ids.slow}`));
  await page.waitForSelector('[data-testid=aligned] .cmp-row');
  const st = await page.$$eval('[data-testid=aligned] .cmp-row', (r) => r.map((x) => `${x.querySelector('.op').textContent}:${x.getAttribute('data-status')}`));
  for (const want of ['GET /product:slower', 'SELECT product:slower', 'cache get:removed', 'GET /price retry:added', 'GET /price:same']) assert(st.includes(want), `${want} in ${st}`);
  const delta = await page.textContent('[data-testid=compare-delta]');
  assert(delta.includes('+200 ms'), `delta: ${delta}`);
  await snap(page, 'compare-aligned');
  await page.click('text=By operation');
  await page.waitForSelector('[data-testid=ops-table]');
  const first = await page.textContent('[data-testid=ops-table] tbody tr');
  assert(first.includes('SELECT product'), `largest change first: ${first}`);
  await snap(page, 'compare-ops');
  await page.goto(url(`compare?a=${ids.fast}&b=${ids.missing}`));
  await page.waitForSelector('[data-state=not-found]');
  assert((await page.textContent('[data-state=not-found]')).includes('Trace B not found'), 'missing side named');
});

await check('service map shows nodes and edges, or says it is not available', async () => {
  const r = await fetch(`${base}/api/v1/servicegraph?since=1h`);
  await page.goto(url('map'));
  if (r.status === 404) {
    await page.waitForSelector('[data-state=unavailable]');
    log('     SKIP service map data assertions: GET /api/v1/servicegraph answers 404 on this build; the page shows "not available"');
    await snap(page, 'service-map-unavailable');
    return;
  }
  assert(r.ok, `servicegraph: ${r.status}`);
  const g = await r.json();
  await page.waitForSelector('[data-testid=service-map] .node, [data-state=empty]');
  if (!g.nodes?.length) {
    log('     service graph is empty for the fixtures: checking the empty state');
    await page.waitForSelector('[data-state=empty]');
    return;
  }
  // The graph can still grow while the page loads (a client span whose
  // server never answered becomes a virtual edge when its pairing wait
  // expires): compare the drawing with the answer of the same moment,
  // reloading while the two differ.
  let nodes = [];
  let edges = [];
  let cur = g;
  for (let attempt = 0; ; attempt++) {
    nodes = await page.$$eval('[data-testid=service-map] .node', (n) => n.map((x) => x.getAttribute('data-node')));
    edges = await page.$$('[data-testid=service-map] .edge');
    const again = await (await fetch(`${base}/api/v1/servicegraph?since=1h`)).json();
    const same = edges.length === cur.edges.length && cur.nodes.every((n) => nodes.includes(n.id));
    if (same || attempt === 4) break;
    cur = again;
    await page.reload();
    await page.waitForSelector('[data-testid=service-map] .node');
  }
  for (const n of cur.nodes) assert(nodes.includes(n.id), `node ${n.id} drawn`);
  assert(edges.length === cur.edges.length, `edges drawn: ${edges.length} of ${cur.edges.length}`);
  log(`     service map: ${nodes.length} nodes (${nodes.join(', ')}), ${edges.length} edges`);
  await snap(page, 'service-map');
  const svc = g.nodes.find((n) => n.type === 'service');
  await page.click(`[data-node="${svc.id}"]`);
  await page.waitForURL('**/ui/search?**');
  assert(decodeURIComponent(page.url()).includes(svc.id), 'clicking a node searches its traces');
});

await check('services overview: RED per service, sparklines with baseline bands, sorting', async () => {
  const red = await (await fetch(`${base}/api/v1/red?by=service&since=1h`)).json();
  await page.goto(url('services'));
  await page.waitForSelector('[data-testid=services-table] tbody tr');
  const rows = await page.$$eval('[data-testid=services-table] tbody tr', (t) => t.map((r) => r.getAttribute('data-service')));
  for (const s of red.series) assert(rows.includes(s.service), `service ${s.service} listed: ${rows}`);
  assert(rows.includes(storefront.service) && rows.includes('stock'), `fixture services: ${rows}`);
  assert((await page.$$(`[data-service=${storefront.service}] svg.spark`)).length === 3, 'three sparklines per service');
  const bl = await (await fetch(`${base}/api/v1/baselines?service=${storefront.service}`)).json();
  const b = bl.baselines?.find((x) => x.operation === storefront.operation && x.kind === 'server');
  const bands = (await page.$$(`[data-service=${storefront.service}] [data-testid=baseline-band]`)).length;
  if (b?.sufficient) assert(bands === 3, `baseline bands behind the sparklines: ${bands}`);
  else log(`     NOTE no sufficient baseline for ${storefront.service} yet (${JSON.stringify(b ?? null).slice(0, 120)}): bands not checked`);
  const row = await page.textContent(`[data-service=${storefront.service}]`);
  assert(row.includes(`${red.series.find((s) => s.service === storefront.service).calls} requests`), `calls shown: ${row}`);
  await snap(page, 'services');
  await page.click('[data-testid=services-table] thead button:has-text("p99")');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('sort') === 'p99');
  const first = await page.getAttribute('[data-testid=services-table] tbody tr', 'data-service');
  const slowest = [...red.series].sort((a, b) => b.p99Ms - a.p99Ms)[0].service;
  assert(first === slowest, `sorted by p99: first ${first}, want ${slowest}`);
});

await check('services: drill-down charts with bands, keyboard cursor, operations, critical path, deep link', async () => {
  await page.goto(url('services'));
  await page.click(`[data-service=${storefront.service}] th a`);
  await page.waitForFunction((s) => new URLSearchParams(location.search).get('service') === s, storefront.service);
  await page.waitForSelector(`[data-testid=operations-table] tr[data-operation="${storefront.operation}"]`);
  assert((await page.$$('[data-testid=service-charts] figure.chart')).length === 3, 'rate, error and latency charts');
  const ops = await page.$$eval('[data-testid=operations-table] tbody tr', (t) => t.map((r) => r.getAttribute('data-operation')));
  for (const o of [storefront.operation, 'SELECT cart', 'GET /stock', 'SELECT promotions']) assert(ops.includes(o), `operation ${o} in ${ops}`);
  const chart = '[data-testid=service-charts] [data-testid=chart-latency]';
  await page.focus(`${chart} svg`);
  await page.keyboard.press('End');
  await page.keyboard.press('ArrowLeft');
  const readout = await page.textContent(`${chart} [data-testid=chart-readout]`);
  assert(!readout.startsWith('latest') && /\d\d:\d\d/.test(readout), `the cursor reads a point out: ${readout}`);
  await page.click(`[data-testid=operations-table] tr[data-operation="${storefront.operation}"] [data-testid=op-critical-path]`);
  // Focus leaves the chart on that click; nothing above the table may move
  // (a readout that shrank on blur once moved the row under the pointer).
  await page.waitForFunction((o) => new URLSearchParams(location.search).get('op') === o, storefront.operation, { timeout: 5000 });
  await page.waitForSelector('[data-testid=critical-path] .cp-table tr[data-operation="SELECT promotions"]');
  const cp = await page.$$eval('[data-testid=critical-path] .cp-table tbody tr', (t) => t.map((r) => r.getAttribute('data-operation')));
  assert(cp[0] === 'GET /stock', `the tail's biggest change first: ${cp}`);
  assert((await page.$$('[data-testid=critical-path] .cp-stack .seg')).length >= 4, 'stacked bars');
  await snap(page, 'services-operation-critical-path');
  const deep = page.url();
  const p2 = await context.newPage();
  await p2.goto(deep);
  await p2.waitForSelector('[data-testid=critical-path] .cp-table tbody tr');
  assert((await p2.$$('[data-testid=operation-charts] figure.chart')).length === 3, 'deep link restores the operation');
  await p2.close();
  await page.click(`[data-testid=operations-table] tr[data-operation="${storefront.operation}"] [data-testid=op-traces]`);
  await page.waitForURL('**/ui/search?**');
  const q = new URL(page.url()).searchParams.get('q');
  assert(q === `{ resource.service.name = "${storefront.service}" && name = "${storefront.operation}" && kind = server }`, `search deep link: ${q}`);
  await page.waitForSelector('[data-testid=results] tbody tr');
});

await check('why slow: ranked findings, a finding highlights its spans', async () => {
  const ex = await (await fetch(`${base}/api/v1/explain/${ids.slowCart}`)).json();
  await page.goto(url(`trace/${ids.slowCart}`));
  await page.waitForSelector('.wf-row');
  await page.click('[data-testid=why-button]');
  await page.waitForSelector('[data-testid=findings] button.finding');
  const types = await page.$$eval('[data-testid=findings] button.finding', (b) => b.map((x) => x.getAttribute('data-type')));
  assert(JSON.stringify(types) === JSON.stringify(ex.findings.map((f) => f.type)), `findings in the server's order: ${types}`);
  assert(types.includes('critical_path_self') && types.includes('n_plus_one'), `slow stock call and the N+1 found: ${types}`);
  const first = await page.textContent('[data-testid=findings] button.finding');
  assert(first.includes(ex.findings[0].service) && first.includes(ex.findings[0].operation), `first finding: ${first}`);
  const n1 = types.indexOf('n_plus_one');
  await page.click(`[data-testid=findings] li:nth-child(${n1 + 1}) button.finding`);
  await page.waitForFunction((i) => new URLSearchParams(location.search).get('finding') === String(i), n1);
  await page.waitForFunction((n) => document.querySelectorAll('.wf-row.highlight').length === n, ex.findings[n1].spanIDs.length);
  const sel = new URL(page.url()).searchParams.get('span');
  assert(sel === ex.findings[n1].spanIDs[0], `the finding's first span selected: ${sel}`);
  await snap(page, 'trace-why-slow');
  await page.goto(page.url());
  await page.waitForFunction((n) => document.querySelectorAll('.wf-row.highlight').length === n, ex.findings[n1].spanIDs.length);
  await page.focus('[data-testid=waterfall-body]');
  await page.keyboard.press('y');
  await page.waitForFunction(() => !document.querySelector('[data-testid=why-slow]') && !new URLSearchParams(location.search).get('why'));
});

await check('attribute ranking: what distinguishes the slow storefront requests', async () => {
  const q = `{ resource.service.name = "${storefront.service}" && duration > 60ms }`;
  await page.goto(url(`search?mode=traceql&q=${qEnc(q)}`));
  await page.waitForSelector('[data-testid=results] tbody tr');
  await page.click('[data-testid=rank-button]');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('rank') === '1');
  await page.waitForSelector('[data-testid=rank-table] tbody tr');
  const rows = await page.$$eval('[data-testid=rank-table] tbody tr', (t) => t.map((r) => `${r.getAttribute('data-key')}=${r.getAttribute('data-value')}`));
  assert(rows.includes(`resource.service.version=${storefront.newVersion}`), `the new version ranks: ${rows.slice(0, 6)}`);
  await snap(page, 'search-attribute-ranking');
  await page.click(`[data-testid=rank-table] tr[data-key="resource.service.version"] a`);
  await page.waitForFunction((v) => (new URLSearchParams(location.search).get('q') ?? '').includes(`resource.service.version = "${v}"`), storefront.newVersion);
  await page.waitForSelector('[data-testid=results] tbody tr');
  await page.goto(url('search'));
  await page.waitForSelector('[data-testid=results] tbody tr');
  assert(await page.isDisabled('[data-testid=rank-button]'), 'no ranking for the match-all query');
});

await check('anomalies page: culprit, operations, example traces (or the empty state)', async () => {
  // The detector raises the fixtures' latency change on its second evaluation.
  await poll('/api/v1/anomalies?since=24h', (j) => j.anomalies?.length > 0);
  // Check the page against the answer it got (the detector keeps updating).
  const resp = page.waitForResponse((r) => r.url().includes('/api/v1/anomalies?'));
  await page.goto(url('anomalies'));
  const an = await (await resp).json();
  if (!an.anomalies?.length) {
    log('     NOTE the detector raised no anomaly from the fixtures: checking the empty state');
    await page.waitForSelector('[data-state=empty]');
    assert((await page.textContent('[data-state=empty]')).includes('No anomalies in this time range'), 'empty state');
  } else {
    const a = an.anomalies[0];
    log(`     anomaly: ${a.summary}`);
    await page.waitForSelector(`[data-testid=anomalies] [data-anomaly-id="${a.id}"]`);
    const card = `[data-anomaly-id="${a.id}"]`;
    if (a.culprits?.length) {
      const top = await page.textContent(`${card} [data-testid=top-culprit]`);
      assert(top.includes(a.culprits[0].service) && top.includes(a.culprits[0].operation), `top culprit: ${top}`);
    }
    assert((await page.$$(`${card} [data-testid=anomaly-operations] tbody tr`)).length === a.operations.length, 'operations affected');
    assert((await page.$$(`${card} [data-testid=exemplars] li`)).length === a.exemplars.length, 'example traces');
    assert(a.operations.some((o) => o.service === storefront.service), `the storefront change is among the symptoms: ${a.summary}`);
    await snap(page, 'anomalies');
    if (a.exemplars.length) {
      await page.click(`${card} [data-testid=exemplars] li a`);
      await page.waitForURL(`**/ui/trace/${a.exemplars[0].traceID}?**`);
      await page.waitForSelector('.wf-row.selected');
    }
  }
  await page.goto(url('anomalies?start=2020-01-01T00:00:00Z&end=2020-01-01T01:00:00Z'));
  await page.waitForSelector('[data-state=empty]');
  assert((await page.textContent('[data-state=empty]')).includes('No anomalies in this time range'), 'empty range');
});

await check('deployments page: the new storefront version with its verdict and evidence', async () => {
  await poll('/api/v1/deploys?since=24h', (j) => j.deploys?.some((d) => d.service === storefront.service && d.verdict));
  const resp = page.waitForResponse((r) => r.url().includes('/api/v1/deploys?'));
  await page.goto(url('deploys'));
  const res = await (await resp).json();
  const d = res.deploys?.find((x) => x.service === storefront.service && x.value === storefront.newVersion);
  assert(d, `GET /api/v1/deploys lists storefront ${storefront.newVersion}: ${JSON.stringify(res).slice(0, 300)}`);
  log(`     deploy: ${d.summary}`);
  const card = `[data-testid=deploys] [data-service=${storefront.service}][data-value="${storefront.newVersion}"]`;
  await page.waitForSelector(card);
  const labels = { regressed: 'Regressed', improved: 'Improved', no_change: 'No change', insufficient_data: 'Insufficient data' };
  const verdict = await page.textContent(`${card} [data-testid=verdict]`);
  assert(verdict === labels[d.verdict], `verdict ${verdict} for ${d.verdict}`);
  assert(d.verdict === 'regressed', `the slower version regressed: ${d.verdict}`);
  assert((await page.textContent(card)).includes(storefront.oldVersion), 'previous version named');
  assert((await page.$$(`${card} [data-testid=evidence] li`)).length === d.evidence.length, 'evidence listed');
  if (d.confidence !== null) assert((await page.textContent(`${card} [data-testid=confidence]`)).includes('%'), 'confidence shown');
  assert((await page.$$(`${card} [data-testid=deploy-operations] tbody tr`)).length === d.operations.length, 'per-operation evidence');
  await snap(page, 'deploys');
  await page.click(`${card} [data-testid=new-traces]`);
  await page.waitForURL('**/ui/search?**');
  assert(new URL(page.url()).searchParams.get('q').includes(`resource.service.version = "${storefront.newVersion}"`), 'search of the new version');
  await page.waitForSelector('[data-testid=results] tbody tr');
  await page.goto(url('deploys?verdict=improved'));
  await page.waitForSelector('[data-state=empty]');
});

await check('instrumentation quality: scores per service with examples', async () => {
  const qr = await (await fetch(`${base}/api/v1/quality?since=1h`)).json();
  await page.goto(url('quality'));
  await page.waitForSelector('[data-testid=quality] li[data-service]');
  const shown = await page.$$eval('[data-testid=quality] > li', (l) => l.map((x) => `${x.getAttribute('data-service')}:${x.getAttribute('data-score')}`));
  assert(JSON.stringify(shown) === JSON.stringify(qr.services.map((s) => `${s.service}:${s.score}`)), `services and scores in order: ${shown}`);
  await snap(page, 'quality');
  const ex = qr.services.flatMap((s) => s.issues ?? []).find((i) => i.examples?.length);
  if (ex) {
    await page.click(`[data-testid=quality] a[href$="/trace/${ex.examples[0]}"]`);
    await page.waitForURL(`**/ui/trace/${ex.examples[0]}`);
    await page.waitForSelector('.wf-row');
  }
});

await check('analysis pages: navigation keys, dark theme, detection off', async () => {
  await page.goto(url('services'));
  await page.waitForSelector('[data-testid=services-table]');
  for (const [key, path] of [['a', 'anomalies'], ['d', 'deploys'], ['q', 'quality'], ['o', 'services']]) {
    await page.keyboard.press('g');
    await page.keyboard.press(key);
    await page.waitForURL(`**/ui/${path}`);
  }
  const navs = await page.$$eval('.topbar nav a', (a) => a.map((x) => x.textContent));
  for (const n of ['Services', 'Anomalies', 'Deployments', 'Quality']) assert(navs.includes(n), `${n} in the navigation: ${navs}`);
  const dark = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: 'dark' });
  const p = await dark.newPage();
  p.on('pageerror', (e) => consoleErrors.push(String(e)));
  await p.goto(url(`services?service=${storefront.service}&op=${qEnc(storefront.operation)}&kind=server`));
  await p.waitForSelector('[data-testid=critical-path] .cp-table tbody tr');
  await snap(p, 'services-dark');
  await p.goto(url('deploys'));
  await p.waitForSelector('[data-testid=deploys] .card');
  await snap(p, 'deploys-dark');
  await p.route('**/api/v1/anomalies?**', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'anomaly detection is off: it needs spanmetrics.enabled and detect.enabled' }) }));
  await p.goto(url('anomalies'));
  await p.waitForSelector('[data-state=detection-off]');
  assert((await p.textContent('[data-state=detection-off]')).includes('it needs spanmetrics.enabled'), 'the server message is shown');
  await p.route('**/api/v1/red?**', (route) => route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ error: 'step 7s: want whole minutes' }) }));
  await p.goto(url('services'));
  await p.waitForSelector('[data-state=error]');
  assert((await p.textContent('[data-state=error]')).includes('step 7s: want whole minutes'), 'RED error message shown');
  await snap(p, 'services-error');
  await dark.close();
});

await check('error states: missing trace, bad ID, empty result, unknown page', async () => {
  await page.goto(url(`trace/${ids.missing}`));
  await page.waitForSelector('[data-state=not-found]');
  assert((await page.textContent('[data-state=not-found]')).includes('Trace not found'), 'missing trace');
  await snap(page, 'trace-not-found');
  await page.goto(url('trace/not-hex'));
  await page.waitForSelector('text=That is not a trace ID');
  await page.goto(url(`search?mode=traceql&q=${qEnc('{ name = "no-such-operation" }')}`));
  await page.waitForSelector('[data-state=empty]');
  assert((await page.textContent('[data-state=empty]')).includes('No traces match'), 'empty result');
  await snap(page, 'search-empty');
  await page.goto(url('no/such/page'));
  await page.waitForSelector('text=No such page');
});

await check('slow server: the loading state says so and can be cancelled', async () => {
  await page.route('**/api/v1/search?**', async (route) => {
    await new Promise((r) => setTimeout(r, 4500));
    await route.continue().catch(() => {});
  });
  await page.goto(url('search?since=15m'));
  await page.waitForSelector('.state-loading.slow', { timeout: 8000 });
  assert((await page.textContent('.state-loading')).includes('slow'), 'slow message');
  await snap(page, 'search-slow');
  await page.click('.state-loading button');
  await page.waitForSelector('[data-state=error]');
  await page.unroute('**/api/v1/search?**');
});

await check('server down: a clear message and a retry', async () => {
  await page.route('**/api/v1/search?**', (route) => route.abort('connectionrefused'));
  await page.goto(url('search'));
  await page.waitForSelector('[data-state=error][data-error-kind=network]');
  assert((await page.textContent('[data-state=error]')).includes('not reachable'), 'network error shown');
  await snap(page, 'search-server-down');
  await page.unroute('**/api/v1/search?**');
  await page.click('[data-state=error] button');
  await page.waitForSelector('[data-testid=results] tbody tr');
});

await check('themes: system dark, toggle, keyboard help', async () => {
  const dark = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: 'dark' });
  const p = await dark.newPage();
  await p.goto(url(`trace/${ids.checkout}?span=${spans.charge}`));
  await p.waitForSelector('.wf-row');
  const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert(bg === 'rgb(20, 23, 28)', `dark background from the system preference: ${bg}`);
  await snap(p, 'dark-trace');
  await p.click('[data-testid=theme-toggle]'); // system -> light
  await p.waitForFunction(() => document.documentElement.dataset.theme === 'light');
  const bg2 = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert(bg2 === 'rgb(255, 255, 255)', `light background: ${bg2}`);
  await p.reload();
  await p.waitForSelector('.wf-row');
  assert((await p.evaluate(() => document.documentElement.dataset.theme)) === 'light', 'theme choice kept across reloads');
  await p.keyboard.press('?');
  await p.waitForSelector('[role=dialog]');
  await snap(p, 'keyboard-help');
  await dark.close();
});

/** oneSpanTrace is an OTLP/HTTP JSON request of one server span of service svc, ending now. */
function oneSpanTrace(svc) {
  const end = BigInt(Date.now()) * 1_000_000n;
  return {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: svc } }] },
      scopeSpans: [{
        scope: { name: 'ui-e2e' },
        spans: [{ traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), name: 'GET /', kind: 2, startTimeUnixNano: String(end - 5_000_000n), endTimeUnixNano: String(end) }],
      }],
    }],
  };
}

await check('tenant setting: the Tenant button of the top bar switches the tenant (and token) every view reads', async () => {
  // Another clew, with multitenancy and an operator token allowed every
  // tenant; two tenants write one service each.
  const dir = mkdtempSync(join(tmpdir(), 'clew-ui-e2e-tenants-'));
  const token = randomBytes(24).toString('base64url');
  const cfg = join(dir, 'clew.yaml');
  writeFileSync(cfg, `multitenancy: true\nauth:\n  tokens:\n    - {name: ui, sha256: ${createHash('sha256').update(token).digest('hex')}, tenants: ['*'], rights: [read, write]}\n`);
  const t = await startClew({ config: cfg, dir: join(dir, 'data') });
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: 'light' });
  try {
    const tenants = [['team-a', 'alpha-shop'], ['team-b', 'bravo-shop']];
    for (const [tenant, svc] of tenants) {
      const r = await fetch(`${t.otlp}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Scope-OrgID': tenant, Authorization: `Bearer ${token}` }, body: JSON.stringify(oneSpanTrace(svc)) });
      assert(r.ok, `${tenant} OTLP export: ${r.status} ${await r.text()}`);
    }
    const p = await ctx.newPage();
    p.on('pageerror', (e) => consoleErrors.push(String(e)));
    // Neither tenant nor token yet: refused, and the message says where to set them.
    await p.goto(`${t.base}/ui/search`);
    await p.waitForSelector('[data-state=error]');
    const msg = await p.textContent('[data-state=error]');
    assert(msg.includes('Tenant button'), `error without a tenant: ${msg}`);
    assert((await p.textContent('[data-testid=tenant-button]')).includes('default'), 'the button shows no tenant yet');
    for (const [tenant, own] of tenants) {
      const others = tenants.filter(([x]) => x !== tenant).map(([, s]) => s);
      await p.click('[data-testid=tenant-button]');
      await p.fill('[data-testid=tenant-form] input[name=tenant]', tenant);
      await p.fill('[data-testid=tenant-form] input[name=token]', token);
      await Promise.all([p.waitForEvent('load'), p.click('[data-testid=tenant-form] button[type=submit]')]);
      await p.waitForSelector(`[data-testid=tenant-button]:has-text("Tenant: ${tenant}")`);
      // Search: the tenant's trace, none of the other's.
      await p.waitForSelector('[data-testid=results] tbody tr');
      const rows = await p.textContent('[data-testid=results] tbody');
      assert(rows.includes(own) && !others.some((o) => rows.includes(o)), `${tenant} search results: ${rows}`);
      // Services (RED metrics of the tenant's own span metrics).
      await p.goto(`${t.base}/ui/services`);
      await p.waitForSelector('[data-testid=services-table] tbody tr');
      const svcs = await p.$$eval('[data-testid=services-table] tbody tr', (trs) => trs.map((r) => r.getAttribute('data-service')));
      assert(svcs.includes(own) && !others.some((o) => svcs.includes(o)), `${tenant} services: ${svcs}`);
      await snap(p, `tenant-${tenant}-services`);
      await p.goto(`${t.base}/ui/search`);
    }
    // The token is kept for the tab only, never in local storage.
    const stored = await p.evaluate(() => JSON.stringify({ ...localStorage }));
    assert(!stored.includes(token), 'the token is not in localStorage');
  } finally {
    await ctx.close();
    const exited = new Promise((r) => (t.proc.exitCode === null ? t.proc.once('exit', r) : r()));
    t.proc.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

await check('server stopped: the open page says clew is not reachable', async () => {
  await page.goto(url('search'));
  await page.waitForSelector('[data-testid=results] tbody tr');
  stopClew();
  await new Promise((r) => clew.once('exit', r));
  await page.click('[data-testid=run-search]');
  await page.waitForSelector('[data-state=error][data-error-kind=network]', { timeout: 15_000 });
  await snap(page, 'server-stopped');
});

await check('no uncaught errors in the pages', async () => {
  assert(consoleErrors.length === 0, `page errors: ${consoleErrors.join('\n')}`);
});

await browser.close();
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
writeFileSync(join(artifacts, 'metrics.json'), JSON.stringify({ ...metrics, passed, failed }, null, 2));
log(`\nmetrics: ${JSON.stringify(metrics)}`);
log(`screenshots and metrics.json in ${artifacts}`);
log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
