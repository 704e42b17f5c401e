// The trace summary: services with spans, errors and time, the depth,
// and what the tree builder had to repair.

import { serviceColor } from '../lib/colors';
import { formatCount, formatDuration, formatPercent } from '../lib/format';
import type { TraceModel } from '../lib/model';
import { href } from '../router';

export function TraceSummaryView({ model }: { model: TraceModel }) {
  const { summary, tree, trace } = model;
  const maxT = Math.max(1, ...summary.services.map((s) => Math.max(s.criticalTime, s.selfTime)));
  const issues = tree.issues;
  return (
    <div class="trace-summary" data-testid="trace-summary">
      <dl class="facts wide">
        <dt>Duration</dt>
        <dd>{formatDuration(summary.duration)}</dd>
        <dt>Spans</dt>
        <dd>{formatCount(summary.spans)}</dd>
        <dt>Services</dt>
        <dd>{summary.services.length}</dd>
        <dt>Depth</dt>
        <dd data-testid="trace-depth">{summary.depth}</dd>
        <dt>Errors</dt>
        <dd class={summary.errors ? 'err' : ''}>{formatCount(summary.errors)}</dd>
        <dt>Root</dt>
        <dd>
          {summary.rootService}: {summary.rootName}
        </dd>
      </dl>
      <h3>Time per service</h3>
      <table class="svc-table">
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col" class="num">
              Spans
            </th>
            <th scope="col" class="num">
              Errors
            </th>
            <th scope="col" class="num">
              On critical path
            </th>
            <th scope="col" class="num">
              Self time (sum)
            </th>
            <th scope="col">
              <span class="visually-hidden">Bars</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {summary.services.map((s) => (
            <tr>
              <th scope="row">
                <a href={href('search', { q: `{ resource.service.name = ${JSON.stringify(s.service)} }` })}>
                  <span class="svc-dot" style={{ background: serviceColor(s.service) }} />
                  {s.service}
                </a>
              </th>
              <td class="num">{formatCount(s.spans)}</td>
              <td class={`num${s.errors ? ' err' : ''}`}>{formatCount(s.errors)}</td>
              <td class="num">
                {formatDuration(s.criticalTime)} <span class="muted small">{formatPercent(summary.duration ? s.criticalTime / summary.duration : 0, 0)}</span>
              </td>
              <td class="num">{formatDuration(s.selfTime)}</td>
              <td class="bars">
                <span class="hbar crit" style={{ width: `${(s.criticalTime / maxT) * 100}%` }} title="critical path" />
                <span class="hbar self" style={{ width: `${(s.selfTime / maxT) * 100}%`, background: serviceColor(s.service) }} title="self time" />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(issues.missingParent.length > 0 || issues.duplicateIds.length > 0 || issues.cycles.length > 0 || issues.clockSkew.length > 0) && (
        <>
          <h3>Data issues</h3>
          <ul class="issues">
            {issues.missingParent.length > 0 && <li>{issues.missingParent.length} spans whose parent is not in the trace (shown at the top level).</li>}
            {issues.duplicateIds.length > 0 && <li>{issues.duplicateIds.length} spans repeat another span's ID.</li>}
            {issues.cycles.length > 0 && <li>{issues.cycles.length} spans have a parent chain that loops (the loop is cut).</li>}
            {issues.clockSkew.length > 0 && <li>{issues.clockSkew.length} spans start before or end after their parent (clock skew?).</li>}
          </ul>
        </>
      )}
      <p class="muted small">Trace {trace.traceId}.</p>
    </div>
  );
}
