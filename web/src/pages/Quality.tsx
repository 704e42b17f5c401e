// Instrumentation quality: GET /api/v1/quality, a score per service (100
// minus the weight of each issue: orphan spans, broken context
// propagation, clock skew, no service.version, missing semantic-convention
// attributes) over a sample of recent traces, worst first, with offending
// example traces. URL: since or start/end, service (show only it).

import { qs, useFetch } from '../api';
import type { QualityReport, ServiceQuality } from '../apitypes';
import { Empty, ErrorState, Loading, Notes } from '../components/States';
import { TimeRange, timeFromQuery } from '../components/TimeRange';
import { useDocumentTitle } from '../hooks';
import { formatShare, humanize, issueLabels, opQuery, scoreClass } from '../lib/analysis';
import { serviceColor } from '../lib/colors';
import { formatCount } from '../lib/format';
import { href, setQuery, type Location } from '../router';

export function QualityPage({ loc }: { loc: Location }) {
  useDocumentTitle('Instrumentation quality');
  const time = timeFromQuery(loc.query);
  const { state, retry, cancel } = useFetch<QualityReport>(`/api/v1/quality?${qs(time.api)}`, { timeoutMs: 45_000 });
  const sel = loc.query.get('service') ?? '';
  return (
    <div class="page quality-page">
      <div class="page-head">
        <h1>Instrumentation quality</h1>
        <TimeRange value={time.value} id="q-time" onChange={(v) => setQuery({ since: v.since || null, start: v.start || null, end: v.end || null }, { replace: false })} />
      </div>
      {state.status === 'loading' && <Loading label="Checking the instrumentation of recent traces" since={state.since} onCancel={cancel} />}
      {state.status === 'error' && <ErrorState error={state.error} onRetry={retry} />}
      {state.status === 'ok' && <Report r={state.data} sel={sel} link={time.link} />}
    </div>
  );
}

function Report({ r, sel, link }: { r: QualityReport; sel: string; link: Record<string, string | undefined> }) {
  if (!r.services?.length) {
    return (
      <Empty title="No traces to check in this time range">
        The score is computed over a sample of the newest traces of the range (the last 30 s are left out: their spans may still be arriving). Widen the time range.
      </Empty>
    );
  }
  return (
    <>
      <p class="muted small">
        {formatCount(r.traces)} traces and {formatCount(r.spans)} spans checked{r.matched > r.traces ? ` (the newest of ${formatCount(r.matched)})` : ''}. Each issue costs up to its weight: orphan spans 25, broken propagation 30, clock skew 10, no service.version 15, missing attributes 20; one span in five with an issue costs the whole weight.
      </p>
      <Notes partial={r.partial} notes={r.notes} />
      <label>
        Service{' '}
        <select value={sel} onChange={(e) => setQuery({ service: (e.target as HTMLSelectElement).value || null })}>
          <option value="">all ({r.services.length})</option>
          {[...r.services]
            .map((s) => s.service)
            .sort()
            .map((s) => (
              <option value={s}>{s}</option>
            ))}
        </select>
      </label>
      <ul class="quality-list" data-testid="quality">
        {r.services
          .filter((s) => !sel || s.service === sel)
          .map((s) => (
            <ServiceRow s={s} link={link} />
          ))}
      </ul>
    </>
  );
}

function ServiceRow({ s, link }: { s: ServiceQuality; link: Record<string, string | undefined> }) {
  const cls = scoreClass(s.score);
  return (
    <li class={`quality-row ${cls}`} data-service={s.service} data-score={s.score}>
      <div class="quality-head">
        <span class={`score ${cls}`} aria-label={`Score ${Math.round(s.score)} of 100`}>
          {Math.round(s.score)}
        </span>
        <span class="meter" aria-hidden="true">
          <span style={{ width: `${Math.max(0, Math.min(100, s.score))}%` }} />
        </span>
        <h2>
          <span class="svc-dot" style={{ background: serviceColor(s.service) }} />
          <span class="svc">{s.service}</span>
        </h2>
        <span class="muted small">
          {formatCount(s.spans)} spans in {formatCount(s.traces)} traces · {s.versions?.length ? `version ${s.versions.join(', ')}` : 'no version'} · {s.issues?.length ? `${s.issues.length} ${s.issues.length === 1 ? 'issue' : 'issues'}` : 'no issues'}
        </span>
        <a href={href('search', { q: opQuery({ service: s.service }), ...link })} class="small">
          Traces
        </a>
      </div>
      {s.issues?.length > 0 && (
        <ul class="issues-list">
          {s.issues.map((i) => (
            <li data-issue={i.type}>
              <div>
                <strong>{issueLabels[i.type] ?? humanize(i.type)}</strong>{' '}
                <span class="muted small">
                  {formatCount(i.count)} of {formatCount(i.of)} ({formatShare(i.rate)}) · −{Math.round(i.penalty)} points
                </span>
              </div>
              <div class="small">{i.message}</div>
              {i.attributes && Object.keys(i.attributes).length > 0 && (
                <div class="small">
                  Missing:{' '}
                  {Object.entries(i.attributes)
                    .sort((a, b) => b[1] - a[1])
                    .map(([k, n]) => (
                      <code class="chip">
                        {k} ×{n}
                      </code>
                    ))}
                </div>
              )}
              {i.examples?.length > 0 && (
                <div class="small">
                  Examples:{' '}
                  {i.examples.map((id) => (
                    <a href={href(`trace/${id}`)} class="mono example">
                      {id}
                    </a>
                  ))}
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}
