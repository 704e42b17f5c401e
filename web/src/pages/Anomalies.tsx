// The anomalies page: GET /api/v1/anomalies for the time range, newest
// first. Each anomaly shows its start, severity, kind (the signals), the
// ranked culprits (the most likely one prominent, with its evidence), the
// operations affected and example traces linking to the trace view. URL:
// since (default 24h) or start/end, status (open), id (the anomaly shown
// in full; the newest by default).

import { qs, useFetch } from '../api';
import type { AnomaliesResponse, Anomaly, Culprit } from '../apitypes';
import { DetectError, EvaluatedNote } from '../components/DetectState';
import { Empty, Loading, Notes } from '../components/States';
import { TimeRange, timeFromQuery } from '../components/TimeRange';
import { useDocumentTitle } from '../hooks';
import { culpritQuery, formatChange, formatMeasure, formatMs, formatPValue, formatShare, humanize, measureLabels, severityClass, signalLabels } from '../lib/analysis';
import { serviceColor } from '../lib/colors';
import { formatCount, formatDuration, formatRelative, formatTime } from '../lib/format';
import { href, setQuery, type Location } from '../router';

const DEF_SINCE = '24h';

/** anomalyWindow is the time range to search an anomaly's traces in: from a few minutes before it started to its end. */
function anomalyWindow(a: Anomaly): Record<string, string | undefined> {
  const s = Date.parse(a.start);
  const e = a.end ? Date.parse(a.end) : NaN;
  return { start: Number.isFinite(s) ? new Date(s - 5 * 60_000).toISOString() : undefined, end: Number.isFinite(e) ? new Date(e + 60_000).toISOString() : undefined };
}

export function AnomaliesPage({ loc }: { loc: Location }) {
  useDocumentTitle('Anomalies');
  const q = loc.query;
  const time = timeFromQuery(q, DEF_SINCE);
  const { state, retry, cancel } = useFetch<AnomaliesResponse>(`/api/v1/anomalies?${qs(time.api)}`);
  const onlyOpen = q.get('status') === 'open';
  const sel = q.get('id') ?? '';
  return (
    <div class="page anomalies-page">
      <div class="page-head">
        <h1>Anomalies</h1>
        <TimeRange value={time.value} def={DEF_SINCE} id="anom-time" onChange={(v) => setQuery({ since: v.since || null, start: v.start || null, end: v.end || null, id: null }, { replace: false })} />
        <label class="check">
          <input type="checkbox" checked={onlyOpen} onChange={() => setQuery({ status: onlyOpen ? null : 'open' })} /> Open only
        </label>
        <div class="spacer" />
        {state.status === 'ok' && <EvaluatedNote at={state.data.evaluatedAt} error={state.data.error} />}
      </div>
      {state.status === 'loading' && <Loading label="Loading anomalies" since={state.since} onCancel={cancel} />}
      {state.status === 'error' && <DetectError error={state.error} onRetry={retry} />}
      {state.status === 'ok' && <AnomalyList res={state.data} onlyOpen={onlyOpen} sel={sel} />}
    </div>
  );
}

function AnomalyList({ res, onlyOpen, sel }: { res: AnomaliesResponse; onlyOpen: boolean; sel: string }) {
  const list = (res.anomalies ?? []).filter((a) => !onlyOpen || a.status === 'open');
  if (list.length === 0) {
    return (
      <Empty title={onlyOpen && res.anomalies?.length ? 'No open anomalies' : 'No anomalies in this time range'}>
        clew raises an anomaly when an operation's latency, error rate or throughput leaves its baseline (or spans stop continuing their callers' traces), significantly and for two evaluations in a row. Nothing did in this range.
      </Empty>
    );
  }
  const open = list.some((a) => a.id === sel) ? sel : list[0].id;
  return (
    <ol class="cards" data-testid="anomalies">
      {list.map((a) => (
        <AnomalyCard a={a} expanded={a.id === open} />
      ))}
    </ol>
  );
}

function AnomalyCard({ a, expanded }: { a: Anomaly; expanded: boolean }) {
  const start = Date.parse(a.start);
  const end = a.end ? Date.parse(a.end) : NaN;
  const [top, ...rest] = a.culprits ?? [];
  const win = anomalyWindow(a);
  return (
    <li class={`card anomaly ${a.status === 'open' ? 'open' : 'closed'}`} data-anomaly-id={a.id} aria-labelledby={`anom-${a.id}`}>
      <div class="card-head">
        <span class={`severity ${severityClass(a.severity)}`} title="Severity, 0 to 100: a doubling is 63, tenfold 96" aria-label={`Severity ${Math.round(a.severity)} of 100`}>
          {Math.round(a.severity)}
        </span>
        <div class="card-title">
          <h2 id={`anom-${a.id}`}>
            <button type="button" class="link" aria-expanded={expanded} onClick={() => setQuery({ id: expanded ? null : a.id })}>
              {(a.signals ?? []).map((s) => signalLabels[s] ?? humanize(s)).join(', ') || 'Anomaly'}
              {top ? ` in ${top.service}` : ''}
            </button>
          </h2>
          <div class="muted small">
            <span class={`chip status-${a.status}`}>{a.status}</span> started <time dateTime={a.start}>{formatTime(start).slice(0, 16)}</time> ({formatRelative(start)})
            {Number.isFinite(end) ? ` · ended after ${formatDuration((end - start) * 1e6)}` : ' · ongoing'} · detected {formatRelative(Date.parse(a.detectedAt))}
          </div>
        </div>
      </div>
      <p class="summary">{a.summary}</p>
      {top ? <TopCulprit c={top} win={win} /> : <p class="muted">No culprit ranked yet.</p>}
      {expanded ? (
        <div class="card-body">
          {rest.length > 0 && (
            <>
              <h3>Other candidates</h3>
              <ol class="culprits" start={2}>
                {rest.map((c) => (
                  <li data-rank={c.rank}>
                    <CulpritName c={c} /> <span class="muted small">score {formatShare(c.score)}</span>
                    {c.evidence?.length ? <div class="muted small">{c.evidence.join('; ')}</div> : null}
                  </li>
                ))}
              </ol>
            </>
          )}
          <h3>Operations affected</h3>
          <div class="table-scroll">
            <table class="red-table" data-testid="anomaly-operations">
              <thead>
                <tr>
                  <th scope="col">Operation</th>
                  <th scope="col">Signal</th>
                  <th scope="col" class="num">
                    Observed
                  </th>
                  <th scope="col" class="num">
                    Expected
                  </th>
                  <th scope="col" class="num">
                    Change
                  </th>
                  <th scope="col" class="num">
                    Severity
                  </th>
                  <th scope="col" class="num">
                    Calls
                  </th>
                  <th scope="col">Test</th>
                </tr>
              </thead>
              <tbody>
                {(a.operations ?? []).map((o) => (
                  <tr class={o.active ? '' : 'muted'}>
                    <th scope="row">
                      <a href={href('services', { service: o.service, op: o.operation, kind: o.kind, ...win })}>
                        <span class="svc-dot" style={{ background: serviceColor(o.service) }} />
                        <span class="svc">{o.service}</span> {o.operation}
                      </a>{' '}
                      <span class="muted small">{o.kind}</span>
                      {o.versions?.length ? <span class="chip">version {o.versions.join(', ')}</span> : null}
                    </th>
                    <td>
                      {signalLabels[o.signal] ?? humanize(o.signal)} <span class="muted small">{measureLabels[o.measure] ?? o.measure}</span>
                    </td>
                    <td class="num">{formatMeasure(o.measure, o.observed)}</td>
                    <td class="num">{formatMeasure(o.measure, o.expected)}</td>
                    <td class="num">{formatChange(o.observed, o.expected)}</td>
                    <td class="num">{Math.round(o.severity)}</td>
                    <td class="num">{formatCount(o.calls)}</td>
                    <td class="muted small">
                      {o.window} vs {o.baseline} baseline, {formatPValue(o.pValue)}
                      {o.active ? '' : ' · cleared'}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <h3>Example traces</h3>
          {a.exemplars?.length ? (
            <ul class="exemplars" data-testid="exemplars">
              {a.exemplars.map((x) => (
                <li>
                  <a href={href(`trace/${x.traceID}`, { span: x.spanID })} class="mono small">
                    {x.traceID}
                  </a>{' '}
                  <span class="svc">{x.service}</span> {x.operation} · {formatMs(x.durationMs)}
                  {x.error && <span class="err"> error</span>} ·{' '}
                  <a href={href(`trace/${x.traceID}`, { why: '1' })} title="Compare this trace with its cohort">
                    why slow?
                  </a>
                </li>
              ))}
            </ul>
          ) : (
            <p class="muted">No example traces.</p>
          )}
          <Notes partial={a.partial} notes={a.notes} label="The ranking is partial" />
        </div>
      ) : (
        <button type="button" class="link small" onClick={() => setQuery({ id: a.id })}>
          Details: {a.operations?.length ?? 0} operations, {a.exemplars?.length ?? 0} example traces{rest.length ? `, ${rest.length} more candidates` : ''}
        </button>
      )}
    </li>
  );
}

function CulpritName({ c }: { c: Culprit }) {
  return (
    <span class="culprit-name">
      <span class="svc-dot" style={{ background: serviceColor(c.service) }} />
      <span class="svc">{c.service}</span> {c.operation} {c.kind && <span class="muted small">{c.kind}</span>}
      {c.version && <span class="chip">version {c.version}</span>}
      {c.attribute && <code class="chip">{c.attribute}</code>}
    </span>
  );
}

function TopCulprit({ c, win }: { c: Culprit; win: Record<string, string | undefined> }) {
  return (
    <div class="culprit top" data-testid="top-culprit">
      <div class="culprit-label">Most likely culprit</div>
      <div class="culprit-main">
        <CulpritName c={c} />
      </div>
      <dl class="facts inline small">
        <dt>Share of the change</dt>
        <dd>{formatShare(c.score)}</dd>
        {c.selfTimeDeltaMs ? (
          <>
            <dt>Self time per trace</dt>
            <dd>{`${c.selfTimeDeltaMs > 0 ? '+' : ''}${formatMs(c.selfTimeDeltaMs)}`}</dd>
          </>
        ) : null}
        {c.errorOriginDelta ? (
          <>
            <dt>Errors originating per trace</dt>
            <dd>{`${c.errorOriginDelta > 0 ? '+' : ''}${c.errorOriginDelta.toFixed(2)}`}</dd>
          </>
        ) : null}
      </dl>
      {c.evidence?.length ? (
        <ul class="evidence">
          {c.evidence.map((e) => (
            <li>{e}</li>
          ))}
        </ul>
      ) : null}
      <div class="link-row">
        <a href={href('search', { q: culpritQuery(c), ...win })}>Search its traces</a>
        <a href={href('services', { service: c.service, op: c.operation, kind: c.kind, ...win })}>Its RED and critical path</a>
      </div>
    </div>
  );
}
