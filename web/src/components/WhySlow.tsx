// "Why is this trace slow?": GET /api/v1/explain/{traceID} compares the
// trace with its cohort (traces of the same root operation) and ranks
// findings (slow self time on the critical path, N+1, serialized fan-out,
// retries, new or missing operations). Picking a finding highlights and
// selects its spans in the waterfall.

import { useFetch } from '../api';
import type { Explanation } from '../apitypes';
import { findingLabels, formatMs, formatShare, humanize } from '../lib/analysis';
import { serviceColor } from '../lib/colors';
import { formatTime } from '../lib/format';
import { ErrorState, Loading, Notes } from './States';

export function useExplain(traceId: string, on: boolean) {
  return useFetch<Explanation>(on ? `/api/v1/explain/${traceId}` : null, { timeoutMs: 60_000 });
}

export function WhySlowPanel({ state, retry, cancel, picked, onPick, onClose }: { state: ReturnType<typeof useExplain>['state']; retry: () => void; cancel: () => void; picked: number; onPick: (i: number) => void; onClose: () => void }) {
  return (
    <section class="why-panel" aria-labelledby="why-title" data-testid="why-slow">
      <div class="section-head">
        <h2 id="why-title">Why is this trace slow?</h2>
        <div class="spacer" />
        <button type="button" class="icon" onClick={onClose} aria-label="Close (y)" title="Close (y)">
          ×
        </button>
      </div>
      {state.status === 'loading' && <Loading label="Comparing with similar traces" since={state.since} onCancel={cancel} />}
      {state.status === 'error' && <ErrorState error={state.error} onRetry={retry} title={state.error.status === 404 ? 'The analysis cannot find this trace' : undefined} />}
      {state.status === 'ok' && <Explained e={state.data} picked={picked} onPick={onPick} />}
    </section>
  );
}

function Explained({ e, picked, onPick }: { e: Explanation; picked: number; onPick: (i: number) => void }) {
  const c = e.cohort;
  return (
    <div class="why-body">
      <p class="small" data-testid="why-cohort">
        {c && c.traces > 0 ? (
          <>
            Compared with <strong>{c.traces}</strong> similar traces ({e.rootService} {e.rootOperation}, {formatTime(Date.parse(c.start)).slice(5, 16)} to {formatTime(Date.parse(c.end)).slice(5, 16)}): median <strong>{formatMs(c.p50Ms)}</strong>, p90 {formatMs(c.p90Ms)}; this one took <strong>{formatMs(e.durationMs)}</strong>
            {e.excessMs > 0 ? (
              <>
                , <strong class="err">{formatMs(e.excessMs)}</strong> more than the median
              </>
            ) : null}
            .
          </>
        ) : (
          <>No similar traces to compare with: only patterns (N+1 calls, retries, sequential calls) are looked for.</>
        )}
      </p>
      {e.findings?.length ? (
        <ol class="findings" data-testid="findings">
          {e.findings.map((f, i) => (
            <li>
              <button type="button" class={`finding${picked === i ? ' picked' : ''}`} aria-pressed={picked === i} onClick={() => onPick(picked === i ? -1 : i)} data-type={f.type} title={f.spanIDs?.length ? `Show its ${f.spanIDs.length} ${f.spanIDs.length === 1 ? 'span' : 'spans'} in the waterfall` : undefined}>
                <span class="finding-type">{findingLabels[f.type] ?? humanize(f.type)}</span>
                <span class="finding-op">
                  <span class="svc-dot" style={{ background: serviceColor(f.service) }} />
                  <span class="svc">{f.service}</span> {f.operation}
                </span>
                <span class="finding-excess" title="Time beyond what similar traces spend on it">
                  {f.excessMs > 0 ? `+${formatMs(f.excessMs)}` : f.savingMs > 0 ? `could save ${formatMs(f.savingMs)}` : ''}
                </span>
                <span class="finding-msg">{f.message}</span>
                {f.detail && <code class="finding-detail">{f.detail}</code>}
                {f.inCohort !== undefined && f.inCohort > 0 && f.type !== 'critical_path_self' ? <span class="muted small">seen in {formatShare(f.inCohort)} of the cohort</span> : null}
              </button>
            </li>
          ))}
        </ol>
      ) : (
        <p class="muted" data-testid="no-findings">
          Nothing stands out: {c && c.traces > 0 ? 'this trace is within the spread of similar traces.' : 'no N+1 calls, retries or avoidable sequential calls.'}
        </p>
      )}
      {e.criticalPath?.length ? (
        <details class="why-cp">
          <summary>Self time on the critical path, against the cohort's median</summary>
          <div class="table-scroll">
            <table class="red-table">
              <thead>
                <tr>
                  <th scope="col">Operation</th>
                  <th scope="col" class="num">
                    This trace
                  </th>
                  <th scope="col" class="num">
                    Cohort median
                  </th>
                </tr>
              </thead>
              <tbody>
                {e.criticalPath.map((s) => (
                  <tr>
                    <th scope="row">
                      <span class="svc">{s.service}</span> {s.operation}
                    </th>
                    <td class="num">{formatMs(s.selfMs)}</td>
                    <td class="num">{s.cohortP50Ms === undefined ? '–' : formatMs(s.cohortP50Ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      ) : null}
      <Notes partial={e.partial} notes={e.notes} />
    </div>
  );
}
