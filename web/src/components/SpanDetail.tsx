// The span detail panel: status, timing, attributes, resource, scope,
// events (exception stack traces shown as code), links to other traces.

import type { Attr } from '../lib/otlp';
import { isError, kindName } from '../lib/otlp';
import { serviceColor } from '../lib/colors';
import { formatDuration, formatTime } from '../lib/format';
import type { TraceModel } from '../lib/model';
import { href } from '../router';
import { AttrValue } from './AttrValue';

function AttrTable({ attrs, label }: { attrs: Attr[]; label: string }) {
  if (!attrs.length) return <p class="muted small">No {label.toLowerCase()}.</p>;
  return (
    <table class="attrs-table" aria-label={label}>
      <tbody>
        {attrs.map((a) => (
          <tr>
            <th scope="row" class="mono">
              {a.key}
            </th>
            <td>
              <AttrValue value={a.value} type={a.type} />
              {a.type !== 'string' && <span class="type">{a.type}</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const statusNames = ['unset', 'ok', 'error'];

export function SpanDetail({ model, index, onSelect, onClose }: { model: TraceModel; index: number; onSelect: (i: number) => void; onClose: () => void }) {
  const { trace, tree, cp } = model;
  const s = trace.spans[index];
  const parent = tree.parent[index];
  const startMs = trace.startMs + s.start / 1e6;
  return (
    <aside class="span-detail" aria-label="Span details" data-testid="span-detail" tabIndex={-1} id="span-detail">
      <header>
        <div class="title">
          <span class="svc-dot" style={{ background: serviceColor(s.service) }} />
          <div>
            <h2>{s.name || '(no name)'}</h2>
            <div class="muted">{s.service}</div>
          </div>
        </div>
        <button type="button" class="icon close" aria-label="Close span details (Escape)" onClick={onClose}>
          ×
        </button>
      </header>
      <dl class="facts">
        <dt>Duration</dt>
        <dd>{formatDuration(s.duration)}</dd>
        <dt>Start</dt>
        <dd>
          +{formatDuration(s.start)} <span class="muted small">({formatTime(startMs)})</span>
        </dd>
        <dt>Kind</dt>
        <dd>{kindName(s.kind)}</dd>
        <dt>Status</dt>
        <dd class={isError(s) ? 'err' : ''} data-testid="span-status">
          {statusNames[s.status] ?? s.status}
          {s.statusMessage && <span>: {s.statusMessage}</span>}
        </dd>
        <dt>Critical path</dt>
        <dd>{cp.onPath[index] ? `on it, ${formatDuration(cp.selfOnPath[index])} of its own` : 'not on it'}</dd>
        <dt>Span ID</dt>
        <dd class="mono">{s.spanId}</dd>
        <dt>Parent</dt>
        <dd class="mono">
          {parent >= 0 ? (
            <button type="button" class="link mono" onClick={() => onSelect(parent)}>
              {s.parentId} ({trace.spans[parent].name})
            </button>
          ) : s.parentId ? (
            <span title="The parent span is not in this trace">{s.parentId} (missing)</span>
          ) : (
            'none (root)'
          )}
        </dd>
        {s.traceState && (
          <>
            <dt>Trace state</dt>
            <dd class="mono">{s.traceState}</dd>
          </>
        )}
        {(s.dropped.attrs > 0 || s.dropped.events > 0 || s.dropped.links > 0) && (
          <>
            <dt>Dropped</dt>
            <dd>
              {s.dropped.attrs} attributes, {s.dropped.events} events, {s.dropped.links} links
            </dd>
          </>
        )}
      </dl>
      <section>
        <h3>Attributes ({s.attrs.length})</h3>
        <AttrTable attrs={s.attrs} label="Span attributes" />
      </section>
      {s.events.length > 0 && (
        <section>
          <h3>Events ({s.events.length})</h3>
          <ol class="events">
            {s.events.map((e) => {
              const stack = e.attrs.find((a) => a.key === 'exception.stacktrace');
              const rest = e.attrs.filter((a) => a !== stack);
              return (
                <li class={e.name === 'exception' ? 'exception' : ''}>
                  <div class="event-head">
                    <strong>{e.name}</strong> <span class="muted small">at +{formatDuration(e.time - s.start)} into the span</span>
                  </div>
                  <AttrTable attrs={rest} label="Event attributes" />
                  {stack && (
                    <div class="stack">
                      <div class="muted small">Stack trace</div>
                      <AttrValue value={stack.value} pre />
                    </div>
                  )}
                </li>
              );
            })}
          </ol>
        </section>
      )}
      {s.links.length > 0 && (
        <section>
          <h3>Links ({s.links.length})</h3>
          <ul class="links">
            {s.links.map((l) => (
              <li>
                <a href={href(`trace/${l.traceId}`, { span: l.spanId })} class="mono" data-testid="span-link">
                  {l.traceId === trace.traceId ? 'this trace' : `trace ${l.traceId}`}, span {l.spanId}
                </a>
                {l.attrs.length > 0 && <AttrTable attrs={l.attrs} label="Link attributes" />}
              </li>
            ))}
          </ul>
        </section>
      )}
      <section>
        <h3>Resource ({s.resource.attrs.length})</h3>
        <AttrTable attrs={s.resource.attrs} label="Resource attributes" />
      </section>
      {(s.scope.name || s.scope.attrs.length > 0) && (
        <section>
          <h3>Instrumentation scope</h3>
          <p class="mono small">
            {s.scope.name} {s.scope.version}
          </p>
          {s.scope.attrs.length > 0 && <AttrTable attrs={s.scope.attrs} label="Scope attributes" />}
        </section>
      )}
    </aside>
  );
}
