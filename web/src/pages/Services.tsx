// The services overview: every service's RED (request rate, error rate,
// p50/p90/p99) over the time range from GET /api/v1/red?by=service, with
// small charts whose baseline band (GET /api/v1/baselines) is drawn
// behind the series. A service opens its operations
// (by=operation&service=); an operation opens its charts and its
// aggregated critical path (GET /api/v1/criticalpath), or a search of its
// traces. URL: since or start/end, sort, pct (the latency shown), filter,
// service, op and kind (the operation opened).

import { useEffect, useMemo, useRef } from 'preact/hooks';
import { qs, useFetch, type FetchState } from '../api';
import type { AggregatedCriticalPath, Baseline, BaselinesResponse, REDResponse, REDSeries } from '../apitypes';
import { Sparkline, TimeChart } from '../components/Chart';
import { Empty, ErrorState, Loading, Notes } from '../components/States';
import { TimeRange, timeFromQuery } from '../components/TimeRange';
import { useDocumentTitle } from '../hooks';
import { formatMs, formatShare, opQuery, stackSegments } from '../lib/analysis';
import { serviceColor } from '../lib/colors';
import { formatCount, formatRate, formatRelative } from '../lib/format';
import { bandOf, findBaseline, floorOf, latencyMetrics, pointValue, serviceBand, seriesRate, stepMs, type Metric } from '../lib/series';
import { href, setQuery, type Location } from '../router';

type Pct = 'p50' | 'p90' | 'p99';
const sorts = ['name', 'rate', 'errors', 'p50', 'p90', 'p99'] as const;
type Sort = (typeof sorts)[number];

interface Times {
  times: number[];
  step: number;
}

function timesOf(res: REDResponse): Times {
  const pts = res.series?.[0]?.points ?? [];
  return { times: pts.map((p) => Date.parse(p.t)), step: stepMs(res.step, pts) };
}

const values = (s: REDSeries, m: Metric, step?: number) => (s.points ?? []).map((p) => pointValue(p, m, step));

export function ServicesPage({ loc }: { loc: Location }) {
  const q = loc.query;
  const service = q.get('service') ?? '';
  const time = timeFromQuery(q);
  const pct: Pct = (['p50', 'p90', 'p99'] as const).find((x) => x === q.get('pct')) ?? 'p90';
  useDocumentTitle(service ? `Service ${service}` : 'Services');
  const baselines = useFetch<BaselinesResponse>('/api/v1/baselines', { timeoutMs: 15_000 });
  return (
    <div class="page services-page">
      <div class="page-head">
        {service ? (
          <h1>
            <a href={href('services', { ...time.link, pct: q.get('pct'), sort: q.get('sort'), filter: q.get('filter') })} class="crumb">
              Services
            </a>{' '}
            <span aria-hidden="true">›</span> <span class="svc-dot" style={{ background: serviceColor(service) }} />
            {service}
          </h1>
        ) : (
          <h1>Services</h1>
        )}
        <TimeRange value={time.value} id="svc-time" onChange={(v) => setQuery({ since: v.since || null, start: v.start || null, end: v.end || null }, { replace: false })} />
        <label>
          Latency{' '}
          <select value={pct} onChange={(e) => setQuery({ pct: (e.target as HTMLSelectElement).value === 'p90' ? null : (e.target as HTMLSelectElement).value })} data-testid="pct">
            {latencyMetrics.map((m) => (
              <option value={m}>{m}</option>
            ))}
          </select>
        </label>
        <div class="spacer" />
        <BaselineNote state={baselines.state} />
      </div>
      {service ? <ServiceDetail loc={loc} service={service} time={time} pct={pct} baselines={okBaselines(baselines.state)} /> : <ServiceList loc={loc} time={time} pct={pct} baselines={okBaselines(baselines.state)} />}
    </div>
  );
}

function okBaselines(s: FetchState<BaselinesResponse>): Baseline[] {
  return s.status === 'ok' ? s.data.baselines ?? [] : [];
}

function BaselineNote({ state }: { state: FetchState<BaselinesResponse> }) {
  if (state.status === 'loading') return <span class="muted small">loading baselines…</span>;
  if (state.status === 'error') {
    return (
      <span class="muted small baseline-note" data-testid="baseline-note" title={state.error.message}>
        No baseline bands: {state.error.status === 503 ? 'detection is off' : state.error.message}
      </span>
    );
  }
  if (state.status !== 'ok') return null;
  const at = state.data.evaluatedAt ? Date.parse(state.data.evaluatedAt) : NaN;
  return (
    <span class="muted small baseline-note" data-testid="baseline-note">
      <span class="band-swatch" aria-hidden="true" /> baseline (99% band){Number.isFinite(at) ? `, learned ${formatRelative(at)}` : ', not learned yet'}
      {state.data.error ? ` · last evaluation failed: ${state.data.error}` : ''}
    </span>
  );
}

function Unavailable({ what, retry }: { what: string; retry: () => void }) {
  return (
    <div class="state state-empty" data-state="unavailable" role="status">
      <div class="state-title">RED metrics not available</div>
      <p>This clew does not serve {what} (it answered 404): span metrics are disabled in its configuration. Search and the trace view work without them.</p>
      <button type="button" onClick={retry}>
        Retry
      </button>
    </div>
  );
}

function useRED(params: Record<string, string>) {
  return useFetch<REDResponse>(`/api/v1/red?${qs(params)}`);
}

function ServiceList({ loc, time, pct, baselines }: { loc: Location; time: ReturnType<typeof timeFromQuery>; pct: Pct; baselines: Baseline[] }) {
  const q = loc.query;
  const { state, retry, cancel } = useRED({ by: 'service', ...time.api });
  const sort: Sort = sorts.find((s) => s === q.get('sort')) ?? 'name';
  const filter = q.get('filter') ?? '';
  const rows = useMemo(() => {
    if (state.status !== 'ok') return [];
    const f = filter.toLowerCase();
    const list = (state.data.series ?? []).filter((s) => !f || s.service.toLowerCase().includes(f));
    const key = (s: REDSeries) => (sort === 'rate' ? s.calls : sort === 'errors' ? s.errorRate : sort === 'name' ? 0 : s[`${sort}Ms`]) ?? 0;
    return list.sort((a, b) => key(b) - key(a) || a.service.localeCompare(b.service));
  }, [state, sort, filter]);
  if (state.status === 'loading' || state.status === 'idle') return <Loading label="Loading RED metrics" since={state.status === 'loading' ? state.since : undefined} onCancel={cancel} />;
  if (state.status === 'error') return state.error.status === 404 ? <Unavailable what="GET /api/v1/red" retry={retry} /> : <ErrorState error={state.error} onRetry={retry} />;
  const res = state.data;
  if (!res.series?.length) {
    return (
      <Empty title="No requests in this time range">
        A service appears here once it has served a request (a server or consumer span) in the range. Widen the time range, or check that traces arrive (<a href={href('search')}>search</a>).
      </Empty>
    );
  }
  const t = timesOf(res);
  const sortHead = (s: Sort, label: string, num = true) => (
    <th scope="col" class={num ? 'num' : ''} aria-sort={sort === s ? (s === 'name' ? 'ascending' : 'descending') : undefined}>
      <button type="button" class="link sort" onClick={() => setQuery({ sort: s === 'name' ? null : s })} title={`Sort by ${label}`}>
        {label}
        {sort === s ? (s === 'name' ? ' ▲' : ' ▼') : ''}
      </button>
    </th>
  );
  return (
    <>
      <div class="list-tools">
        <label>
          Filter{' '}
          <input type="search" value={filter} placeholder="service name" onInput={(e) => setQuery({ filter: (e.target as HTMLInputElement).value || null })} aria-label="Filter services by name" />
        </label>
        <span class="muted small">
          {rows.length} of {res.series.length} services · step {res.step.replace(/0s$/, '').replace(/([hm])0m$/, '$1')} · requests are server and consumer spans
        </span>
      </div>
      <div class="table-scroll">
        <table class="red-table" data-testid="services-table">
          <thead>
            <tr>
              {sortHead('name', 'Service', false)}
              {sortHead('rate', 'Rate')}
              <th scope="col">
                <span class="visually-hidden">Rate over time</span>
              </th>
              {sortHead('errors', 'Errors')}
              <th scope="col">
                <span class="visually-hidden">Error rate over time</span>
              </th>
              {sortHead('p50', 'p50')}
              {sortHead('p90', 'p90')}
              {sortHead('p99', 'p99')}
              <th scope="col">{pct} over time</th>
              <th scope="col">
                <span class="visually-hidden">Links</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <tr data-service={s.service}>
                <th scope="row">
                  <a href={href('services', { ...time.link, pct: loc.query.get('pct'), service: s.service })} class="root">
                    <span class="svc-dot" style={{ background: serviceColor(s.service) }} />
                    <span class="svc">{s.service}</span>
                  </a>
                  <div class="muted small">
                    {formatCount(s.calls)} {s.calls === 1 ? 'request' : 'requests'}
                  </div>
                </th>
                <td class="num">{formatRate(seriesRate(s, res))}</td>
                <td>
                  <Sparkline metric="rate" times={t.times} step={t.step} values={values(s, 'rate', t.step)} band={serviceBand(baselines, s.service, 'rate')} label={`${s.service} request rate`} floor={floorOf('rate')} />
                </td>
                <td class={`num${s.errorRate > 0 ? ' err' : ''}`}>{formatShare(s.errorRate)}</td>
                <td>
                  <Sparkline metric="errors" times={t.times} step={t.step} values={values(s, 'errors')} band={serviceBand(baselines, s.service, 'errors')} label={`${s.service} error rate`} floor={floorOf('errors')} />
                </td>
                <td class="num">{formatMs(s.p50Ms)}</td>
                <td class="num">{formatMs(s.p90Ms)}</td>
                <td class="num">{formatMs(s.p99Ms)}</td>
                <td>
                  <Sparkline metric={pct} times={t.times} step={t.step} values={values(s, pct)} band={serviceBand(baselines, s.service, pct)} label={`${s.service} ${pct} latency`} floor={floorOf(pct)} />
                </td>
                <td class="link-row">
                  <a href={href('search', { q: opQuery({ service: s.service }), ...time.link })}>Traces</a>
                  <a href={href('map', { ...time.link, focus: s.service })}>Map</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {rows.length === 0 && <Empty title="No service matches the filter" />}
    </>
  );
}

const kindOrder: Record<string, number> = { server: 0, consumer: 1, producer: 2, client: 3, internal: 4 };

function ServiceDetail({ loc, service, time, pct, baselines }: { loc: Location; service: string; time: ReturnType<typeof timeFromQuery>; pct: Pct; baselines: Baseline[] }) {
  const q = loc.query;
  const op = q.get('op') ?? '';
  const kind = q.get('kind') ?? '';
  const svc = useRED({ by: 'service', service, ...time.api });
  const ops = useRED({ by: 'operation', service, ...time.api });
  if (svc.state.status === 'loading' || svc.state.status === 'idle') return <Loading label={`Loading ${service}`} since={svc.state.status === 'loading' ? svc.state.since : undefined} onCancel={svc.cancel} />;
  if (svc.state.status === 'error') return svc.state.error.status === 404 ? <Unavailable what="GET /api/v1/red" retry={svc.retry} /> : <ErrorState error={svc.state.error} onRetry={svc.retry} />;
  const s = svc.state.data.series?.[0];
  const t = timesOf(svc.state.data);
  return (
    <>
      {s ? (
        <>
          <dl class="facts inline" data-testid="service-facts">
            <dt>Requests</dt>
            <dd>{formatCount(s.calls)}</dd>
            <dt>Rate</dt>
            <dd>{formatRate(seriesRate(s, svc.state.data))}</dd>
            <dt>Errors</dt>
            <dd class={s.errors ? 'err' : ''}>
              {formatCount(s.errors)} ({formatShare(s.errorRate)})
            </dd>
            <dt>p50</dt>
            <dd>{formatMs(s.p50Ms)}</dd>
            <dt>p90</dt>
            <dd>{formatMs(s.p90Ms)}</dd>
            <dt>p99</dt>
            <dd>{formatMs(s.p99Ms)}</dd>
            <dd>
              <a href={href('search', { q: opQuery({ service }), ...time.link })}>Search its traces</a> · <a href={href('map', { ...time.link, focus: service })}>Service map</a>
            </dd>
          </dl>
          <REDCharts series={s} t={t} pct={pct} band={(m) => serviceBand(baselines, service, m)} bandLabel={`baseline of ${service}'s requests`} testid="service-charts" />
        </>
      ) : (
        <Empty title={`${service} served no requests in this time range`}>Its client and internal operations, if any, are listed below. Widen the time range to see more.</Empty>
      )}
      <section aria-labelledby="ops-title" class="section">
        <h2 id="ops-title">Operations</h2>
        <OperationsTable state={ops.state} retry={ops.retry} cancel={ops.cancel} service={service} time={time} pct={pct} baselines={baselines} op={op} kind={kind} />
      </section>
      {op && <OperationDetail service={service} op={op} kind={kind} opsState={ops.state} time={time} pct={pct} baselines={baselines} />}
    </>
  );
}

function REDCharts({ series, t, pct, band, bandLabel, testid }: { series: REDSeries; t: Times; pct: Pct; band: (m: Metric) => ReturnType<typeof bandOf>; bandLabel: string; testid: string }) {
  const lat = useMemo(
    () =>
      latencyMetrics.map((m) => ({ values: values(series, m), label: m, cls: m === pct ? 'l0' : m === 'p50' ? 'l1' : 'l2' })).sort((a, b) => (a.cls === 'l0' ? -1 : b.cls === 'l0' ? 1 : 0)),
    [series, pct],
  );
  const rate = useMemo(() => [{ values: values(series, 'rate', t.step), label: 'rate' }], [series, t.step]);
  const errs = useMemo(() => [{ values: values(series, 'errors'), label: 'error rate' }], [series]);
  return (
    <div class="chart-grid" data-testid={testid}>
      <TimeChart title="Request rate" metric="rate" times={t.times} step={t.step} lines={rate} band={band('rate')} bandLabel={bandLabel} floor={floorOf('rate')} testid="chart-rate" />
      <TimeChart title="Error rate" metric="errors" times={t.times} step={t.step} lines={errs} band={band('errors')} bandLabel={bandLabel} floor={floorOf('errors')} testid="chart-errors" />
      <TimeChart title={`Latency (band: ${pct})`} metric={pct} times={t.times} step={t.step} lines={lat} band={band(pct)} bandLabel={bandLabel} floor={floorOf(pct)} testid="chart-latency" />
    </div>
  );
}

function OperationsTable(p: { state: FetchState<REDResponse>; retry: () => void; cancel: () => void; service: string; time: ReturnType<typeof timeFromQuery>; pct: Pct; baselines: Baseline[]; op: string; kind: string }) {
  const { state } = p;
  if (state.status === 'loading' || state.status === 'idle') return <Loading label="Loading operations" since={state.status === 'loading' ? state.since : undefined} onCancel={p.cancel} />;
  if (state.status === 'error') return <ErrorState error={state.error} onRetry={p.retry} />;
  const list = [...(state.data.series ?? [])].sort((a, b) => (kindOrder[a.kind] ?? 9) - (kindOrder[b.kind] ?? 9) || b.calls - a.calls || a.operation.localeCompare(b.operation));
  if (!list.length) return <Empty title="No operations in this time range" />;
  const t = timesOf(state.data);
  return (
    <div class="table-scroll">
      <table class="red-table ops" data-testid="operations-table">
        <thead>
          <tr>
            <th scope="col">Operation</th>
            <th scope="col">Kind</th>
            <th scope="col" class="num">
              Calls
            </th>
            <th scope="col" class="num">
              Rate
            </th>
            <th scope="col" class="num">
              Errors
            </th>
            <th scope="col" class="num">
              p50
            </th>
            <th scope="col" class="num">
              p90
            </th>
            <th scope="col" class="num">
              p99
            </th>
            <th scope="col">{p.pct} over time</th>
            <th scope="col">
              <span class="visually-hidden">Links</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {list.map((s) => {
            const b = findBaseline(p.baselines, s.service, s.operation, s.kind);
            const selected = s.operation === p.op && (!p.kind || s.kind === p.kind);
            return (
              <tr data-operation={s.operation} data-kind={s.kind} class={selected ? 'selected' : ''}>
                <th scope="row">
                  <a href={href('services', { ...p.time.link, pct: p.pct === 'p90' ? null : p.pct, service: p.service, op: s.operation, kind: s.kind })} aria-current={selected ? 'true' : undefined} title="Charts and critical path of this operation">
                    {s.operation}
                  </a>
                </th>
                <td>{s.kind}</td>
                <td class="num">{formatCount(s.calls)}</td>
                <td class="num">{formatRate(seriesRate(s, state.data))}</td>
                <td class={`num${s.errorRate > 0 ? ' err' : ''}`}>{formatShare(s.errorRate)}</td>
                <td class="num">{formatMs(s.p50Ms)}</td>
                <td class="num">{formatMs(s.p90Ms)}</td>
                <td class="num">{formatMs(s.p99Ms)}</td>
                <td>
                  <Sparkline metric={p.pct} times={t.times} step={t.step} values={values(s, p.pct)} band={bandOf(b, p.pct)} label={`${s.operation} ${p.pct} latency`} floor={floorOf(p.pct)} />
                </td>
                <td class="link-row">
                  <a href={href('search', { q: opQuery({ service: s.service, operation: s.operation, kind: s.kind }), ...p.time.link })} data-testid="op-traces">
                    Traces
                  </a>
                  <a href={href('services', { ...p.time.link, pct: p.pct === 'p90' ? null : p.pct, service: p.service, op: s.operation, kind: s.kind })} data-testid="op-critical-path">
                    Critical path
                  </a>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function OperationDetail({ service, op, kind, opsState, time, pct, baselines }: { service: string; op: string; kind: string; opsState: FetchState<REDResponse>; time: ReturnType<typeof timeFromQuery>; pct: Pct; baselines: Baseline[] }) {
  const series = opsState.status === 'ok' ? (opsState.data.series ?? []).find((s) => s.operation === op && (!kind || s.kind === kind)) : undefined;
  const b = series ? findBaseline(baselines, service, op, series.kind) : undefined;
  const cp = useFetch<AggregatedCriticalPath>(`/api/v1/criticalpath?${qs({ service, operation: op, ...time.api })}`, { timeoutMs: 45_000 });
  // Opening an operation from the table shows its panel.
  const ref = useRef<HTMLElement>(null);
  useEffect(() => ref.current?.scrollIntoView?.({ block: 'start', behavior: 'smooth' }), [op, kind]);
  return (
    <section class="section op-detail" aria-labelledby="op-title" data-testid="operation-detail" ref={ref}>
      <div class="section-head">
        <h2 id="op-title">
          {op} <span class="muted">{series?.kind ?? kind}</span>
        </h2>
        <a href={href('search', { q: opQuery({ service, operation: op, kind: series?.kind ?? kind }), ...time.link })}>Search its traces</a>
        <a href={href('services', { ...time.link, pct: pct === 'p90' ? null : pct, service })}>Close</a>
      </div>
      {series && opsState.status === 'ok' && (
        <REDCharts series={series} t={timesOf(opsState.data)} pct={pct} band={(m) => bandOf(b, m)} bandLabel={b ? `${b.mode} baseline of ${op}, ${b.minutes} minutes, ${formatCount(b.calls)} calls` : ''} testid="operation-charts" />
      )}
      {b && !b.sufficient && (
        <p class="muted small">
          No baseline band yet: {b.minutes} minutes and {formatCount(b.calls)} calls of history{b.fallback ? ` (${b.fallback})` : ''}.
        </p>
      )}
      <h3>Where its time goes: the critical path aggregated</h3>
      {cp.state.status === 'loading' && <Loading label="Aggregating critical paths" since={cp.state.since} onCancel={cp.cancel} />}
      {cp.state.status === 'error' && <ErrorState error={cp.state.error} onRetry={cp.retry} />}
      {cp.state.status === 'ok' && <CriticalPathView cp={cp.state.data} />}
    </section>
  );
}

function CriticalPathView({ cp }: { cp: AggregatedCriticalPath }) {
  if (!cp.samples || !cp.operations?.length) {
    return (
      <Empty title="No spans of this operation in the time range">
        {cp.notes?.length ? cp.notes.join(' ') : 'Widen the time range.'}
      </Empty>
    );
  }
  const bands: { key: 'p50' | 'tail'; label: string; ms: number; samples: number }[] = [
    { key: 'p50', label: 'median (p40–p60)', ms: cp.p50?.durationMs ?? 0, samples: cp.p50?.samples ?? 0 },
    { key: 'tail', label: `tail (≥ p${Math.round((cp.tail?.quantile ?? 0.99) * 100)})`, ms: cp.tail?.durationMs ?? 0, samples: cp.tail?.samples ?? 0 },
  ];
  const maxMs = Math.max(1e-9, ...bands.map((b) => b.ms));
  return (
    <div class="cp-agg" data-testid="critical-path">
      <p class="muted small">
        {formatCount(cp.samples)} spans in {formatCount(cp.traces)} traces{cp.matched > cp.traces ? ` (of ${formatCount(cp.matched)} matching)` : ''}: each span's duration split among the operations on its critical path (its own time included).
      </p>
      <Notes partial={cp.partial} notes={cp.notes} />
      <div class="stacks">
        {bands.map((b) => (
          <div class="stack-row">
            <div class="stack-label">
              <strong>{b.label}</strong>
              <div class="muted small">
                {formatMs(b.ms)} · {b.samples} {b.samples === 1 ? 'span' : 'spans'}
              </div>
            </div>
            <div class="stack-track">
              <div class="cp-stack" style={{ width: `${(b.ms / maxMs) * 100}%` }} role="img" aria-label={`${b.label}: ${stackSegments(cp, b.key).map((s) => `${s.service} ${s.operation} ${formatShare(s.share)}`).join(', ')}`}>
                {stackSegments(cp, b.key).map((s) => (
                  <span class="seg" style={{ width: `${s.share * 100}%`, background: serviceColor(s.service) }} title={`${s.service} ${s.operation}: ${formatMs(s.ms)} (${formatShare(s.share)})`}>
                    {s.share > 0.12 ? s.operation : ''}
                  </span>
                ))}
              </div>
            </div>
          </div>
        ))}
      </div>
      <div class="table-scroll">
        <table class="red-table cp-table">
          <thead>
            <tr>
              <th scope="col">Operation</th>
              <th scope="col" class="num">
                Median
              </th>
              <th scope="col" class="num">
                Share
              </th>
              <th scope="col" class="num">
                Tail
              </th>
              <th scope="col" class="num">
                Share
              </th>
              <th scope="col" class="num">
                Tail − median
              </th>
              <th scope="col" class="num">
                In spans
              </th>
            </tr>
          </thead>
          <tbody>
            {cp.operations.map((o) => (
              <tr data-operation={o.operation}>
                <th scope="row">
                  <span class="svc-dot" style={{ background: serviceColor(o.service) }} />
                  <span class="svc">{o.service}</span> {o.operation}
                </th>
                <td class="num">{formatMs(o.p50Ms)}</td>
                <td class="num">{formatShare(o.p50Share)}</td>
                <td class="num">{formatMs(o.tailMs)}</td>
                <td class="num">{formatShare(o.tailShare)}</td>
                <td class={`num${o.tailMs - o.p50Ms > 0.1 * maxMs ? ' err' : ''}`}>{formatMs(o.tailMs - o.p50Ms)}</td>
                <td class="num">{formatShare(o.presence)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

