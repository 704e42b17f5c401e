// The deployments page: GET /api/v1/deploys for the time range, newest
// first. Each new version (or deployment.* value) with its verdict
// (regressed, improved, no change, insufficient data), confidence and
// evidence: latency and error rate per operation, new error types,
// changed downstream calls; links search each version's traces. URL:
// since (default 24h) or start/end, service, verdict.

import { qs, useFetch } from '../api';
import type { Deploy, DeploysResponse, NewPrev } from '../apitypes';
import { DetectError, EvaluatedNote } from '../components/DetectState';
import { Empty, Loading } from '../components/States';
import { TimeRange, timeFromQuery } from '../components/TimeRange';
import { useDocumentTitle } from '../hooks';
import { changeClass, changeLabel, deployQuery, formatChange, formatMs, formatPValue, formatShare, verdictOf, verdicts } from '../lib/analysis';
import { serviceColor } from '../lib/colors';
import { formatCount, formatRelative, formatTime } from '../lib/format';
import { href, setQuery, type Location } from '../router';

const DEF_SINCE = '24h';

export function DeploysPage({ loc }: { loc: Location }) {
  useDocumentTitle('Deployments');
  const q = loc.query;
  const time = timeFromQuery(q, DEF_SINCE);
  const { state, retry, cancel } = useFetch<DeploysResponse>(`/api/v1/deploys?${qs(time.api)}`);
  const service = q.get('service') ?? '';
  const verdict = q.get('verdict') ?? '';
  const services = state.status === 'ok' ? [...new Set((state.data.deploys ?? []).map((d) => d.service))].sort() : [];
  return (
    <div class="page deploys-page">
      <div class="page-head">
        <h1>Deployments</h1>
        <TimeRange value={time.value} def={DEF_SINCE} id="dep-time" onChange={(v) => setQuery({ since: v.since || null, start: v.start || null, end: v.end || null }, { replace: false })} />
        <label>
          Service{' '}
          <select value={service} onChange={(e) => setQuery({ service: (e.target as HTMLSelectElement).value || null })}>
            <option value="">all</option>
            {(service && !services.includes(service) ? [...services, service] : services).map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Verdict{' '}
          <select value={verdict} onChange={(e) => setQuery({ verdict: (e.target as HTMLSelectElement).value || null })}>
            <option value="">any</option>
            {Object.entries(verdicts).map(([k, v]) => (
              <option value={k}>{v.label}</option>
            ))}
          </select>
        </label>
        <div class="spacer" />
        {state.status === 'ok' && <EvaluatedNote at={state.data.evaluatedAt} error={state.data.error} />}
      </div>
      {state.status === 'loading' && <Loading label="Loading deployments" since={state.since} onCancel={cancel} />}
      {state.status === 'error' && <DetectError error={state.error} onRetry={retry} />}
      {state.status === 'ok' && <DeployList res={state.data} service={service} verdict={verdict} />}
    </div>
  );
}

function DeployList({ res, service, verdict }: { res: DeploysResponse; service: string; verdict: string }) {
  const all = res.deploys ?? [];
  const list = all.filter((d) => (!service || d.service === service) && (!verdict || d.verdict === verdict));
  if (list.length === 0) {
    return (
      <Empty title={all.length ? 'No deployment matches the filters' : 'No deployments in this time range'}>
        A deployment is a value of <code>service.version</code> (or of a <code>deployment.*</code> resource attribute) that a service did not have before. clew compares it with the value it replaces on the same operations as traffic arrives.
      </Empty>
    );
  }
  return (
    <ol class="cards" data-testid="deploys">
      {list.map((d) => (
        <DeployCard d={d} />
      ))}
    </ol>
  );
}

function winParams(w: { start: string; end: string } | undefined): Record<string, string | undefined> {
  if (!w) return {};
  return { start: w.start || undefined, end: w.end || undefined };
}

function NewVsPrev({ v, fmt }: { v: NewPrev | undefined; fmt: (x: number) => string }) {
  if (!v) return <>–</>;
  return (
    <>
      <strong>{fmt(v.new)}</strong> <span class="muted">vs {fmt(v.previous)}</span>
    </>
  );
}

function DeployCard({ d }: { d: Deploy }) {
  const v = verdictOf(d.verdict);
  const first = Date.parse(d.firstSeen);
  const attr = d.attribute === 'service.version' || !d.attribute ? 'version' : d.attribute;
  return (
    <li class={`card deploy verdict-${v.cls}`} data-service={d.service} data-value={d.value} data-verdict={d.verdict}>
      <div class="card-head">
        <span class={`verdict ${v.cls}`} data-testid="verdict">
          {v.label}
        </span>
        <div class="card-title">
          <h2>
            <span class="svc-dot" style={{ background: serviceColor(d.service) }} />
            <span class="svc">{d.service}</span> {attr} <code>{d.value}</code> <span class="muted">replacing</span> <code>{d.previous || '–'}</code>
          </h2>
          <div class="muted small">
            first seen <time dateTime={d.firstSeen}>{formatTime(first).slice(0, 16)}</time> ({formatRelative(first)}) · {d.comparison === 'concurrent' ? 'compared side by side (both versions serving)' : 'compared with the previous version before it'} · {formatCount(d.calls?.new ?? 0)} vs {formatCount(d.calls?.previous ?? 0)} requests
            {d.confidence !== null && d.confidence !== undefined ? (
              <>
                {' '}
                · confidence <strong data-testid="confidence">{formatConfidence(d.confidence)}</strong>
              </>
            ) : null}
            {d.tests ? ` · ${d.tests} tests` : ''}
          </div>
        </div>
      </div>
      <p class="summary">{d.summary}</p>
      {d.evidence?.length ? (
        <ul class="evidence" data-testid="evidence">
          {d.evidence.map((e) => (
            <li>{e}</li>
          ))}
        </ul>
      ) : null}
      <div class="link-row">
        <a href={href('search', { q: deployQuery(d, 'new'), ...winParams(d.window) })} data-testid="new-traces">
          Traces of {d.value}
        </a>
        {d.previous && (
          <a href={href('search', { q: deployQuery(d, 'previous'), ...winParams(d.previousWindow) })} data-testid="previous-traces">
            Traces of {d.previous}
          </a>
        )}
        <a href={href('services', { service: d.service, ...winParams({ start: d.previousWindow?.start ?? d.window?.start, end: d.window?.end }) })}>RED of {d.service}</a>
      </div>
      <details class="deploy-details" open={d.verdict === 'regressed' || d.verdict === 'improved'}>
        <summary>
          Evidence: {d.operations?.length ?? 0} operations, {d.downstream?.length ?? 0} downstream changes, {d.newErrors?.length ?? 0} new errors
        </summary>
        {d.operations?.length ? (
          <div class="table-scroll">
            <table class="red-table" data-testid="deploy-operations">
              <caption class="visually-hidden">Operations of {d.service}, new value against the previous one</caption>
              <thead>
                <tr>
                  <th scope="col">Operation</th>
                  <th scope="col" class="num">
                    Calls
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
                  <th scope="col" class="num">
                    Error rate
                  </th>
                  <th scope="col">Latency</th>
                  <th scope="col">Errors</th>
                </tr>
              </thead>
              <tbody>
                {d.operations.map((o) => (
                  <tr class={o.sufficientData ? '' : 'muted'}>
                    <th scope="row">
                      {o.operation} <span class="muted small">{o.kind}</span>
                    </th>
                    <td class="num">
                      <NewVsPrev v={o.calls} fmt={formatCount} />
                    </td>
                    <td class="num">
                      <NewVsPrev v={o.p50Ms} fmt={formatMs} />
                    </td>
                    <td class="num">
                      <NewVsPrev v={o.p90Ms} fmt={formatMs} />
                      <div class={`small change ${changeClass(o.latency)}`}>{o.p90Ms ? formatChange(o.p90Ms.new, o.p90Ms.previous) : ''}</div>
                    </td>
                    <td class="num">
                      <NewVsPrev v={o.p99Ms} fmt={formatMs} />
                    </td>
                    <td class="num">
                      <NewVsPrev v={o.errorRate} fmt={formatShare} />
                    </td>
                    <td>
                      <span class={`change ${changeClass(o.latency)}`}>{o.sufficientData ? changeLabel(o.latency) : 'too few calls'}</span> <span class="muted small">{o.latency !== 'no_change' ? formatPValue(o.latencyPValue) : ''}</span>
                    </td>
                    <td>
                      <span class={`change ${changeClass(o.errors)}`}>{o.sufficientData ? changeLabel(o.errors) : ''}</span> <span class="muted small">{o.errors !== 'no_change' ? formatPValue(o.errorsPValue) : ''}</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {d.downstream?.length ? (
          <>
            <h3>Downstream calls per request</h3>
            <div class="table-scroll">
              <table class="red-table" data-testid="deploy-downstream">
                <thead>
                  <tr>
                    <th scope="col">Call</th>
                    <th scope="col">Change</th>
                    <th scope="col" class="num">
                      Per request
                    </th>
                    <th scope="col" />
                  </tr>
                </thead>
                <tbody>
                  {d.downstream.map((c) => (
                    <tr>
                      <th scope="row">
                        {c.operation} <span class="muted small">{c.kind}</span>
                      </th>
                      <td>
                        <span class={`change ${changeClass(c.change)}`}>{changeLabel(c.change)}</span>
                      </td>
                      <td class="num">
                        <NewVsPrev v={c.perRequest} fmt={(x) => x.toFixed(2)} />
                      </td>
                      <td class="muted small">{formatPValue(c.pValue)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        ) : null}
        {d.newErrors?.length ? (
          <>
            <h3>New errors</h3>
            <ul class="new-errors" data-testid="deploy-new-errors">
              {d.newErrors.map((e) => (
                <li>
                  <code>{e.type}</code> <span class="muted small">{formatCount(e.count)} times, {formatPValue(e.pValue)}</span>
                </li>
              ))}
            </ul>
          </>
        ) : null}
        <p class="muted small">
          {d.source === 'red' ? 'Compared from the RED history (no span scan: error types are not compared). ' : ''}
          New value: {fmtWindow(d.window)}; previous: {fmtWindow(d.previousWindow)}. Evaluated {d.evaluatedAt ? formatRelative(Date.parse(d.evaluatedAt)) : '–'}.
        </p>
      </details>
    </li>
  );
}

function fmtWindow(w: { start: string; end: string } | undefined): string {
  if (!w) return '–';
  return `${formatTime(Date.parse(w.start)).slice(5, 16)} to ${formatTime(Date.parse(w.end)).slice(5, 16)}`;
}

/** formatConfidence renders 1 − p: 99.9%, or "> 99.99%" when it rounds to 1. */
export function formatConfidence(c: number): string {
  if (c >= 0.99995) return '> 99.99%';
  if (c >= 0.999) return `${(c * 100).toFixed(2)}%`;
  return `${(c * 100).toFixed(1)}%`;
}
