// Test helpers: small traces written as tables.
import type { Span, Trace } from './otlp';

export interface S {
  id: string;
  parent?: string;
  svc?: string;
  name?: string;
  start: number;
  end: number;
  error?: boolean;
}

export function mkTrace(rows: S[], traceId = 't'): Trace {
  const spans: Span[] = rows.map((r, idx) => ({
    idx,
    spanId: r.id,
    parentId: r.parent ?? '',
    name: r.name ?? r.id,
    kind: 0,
    start: r.start,
    end: r.end,
    duration: r.end - r.start,
    service: r.svc ?? 'svc',
    resource: { service: r.svc ?? 'svc', attrs: [] },
    scope: { name: '', version: '', attrs: [] },
    attrs: [],
    events: [],
    links: [],
    status: r.error ? 2 : 0,
    statusMessage: '',
    traceState: '',
    dropped: { attrs: 0, events: 0, links: 0 },
  }));
  spans.sort((a, b) => a.start - b.start || a.idx - b.idx);
  spans.forEach((s, i) => (s.idx = i));
  const duration = Math.max(0, ...spans.map((s) => s.end)) - Math.min(0, ...spans.map((s) => s.start));
  return { traceId, spans, startMs: 0, baseSec: 0, baseNs: 0, duration };
}

/** ids maps span indices to span IDs, for readable assertions. */
export function ids(t: Trace, idx: ArrayLike<number>): string[] {
  return Array.from(idx, (i) => t.spans[i].spanId);
}
