// Display transforms of the analysis answers: TraceQL for the searches the
// pages link to (an operation, a version, a ranked attribute, a culprit's
// attribute condition), labels of verdicts, findings and issues, the
// stacked bars of an aggregated critical path, and number formats.

import type { AggregatedCriticalPath, Culprit, Deploy, Finding, RankedAttribute } from '../apitypes';
import { attrRef } from './builder';
import { intrinsics, quoteString } from './traceql';

/** opQuery is the TraceQL of a service's spans, optionally of one operation, kind and resource attributes. */
export function opQuery(o: { service: string; operation?: string; kind?: string; resource?: Record<string, string> }): string {
  const c = [`resource.service.name = ${quoteString(o.service)}`];
  if (o.operation) c.push(`name = ${quoteString(o.operation)}`);
  if (o.kind && /^(server|client|producer|consumer|internal|unspecified)$/.test(o.kind)) c.push(`kind = ${o.kind}`);
  for (const [k, v] of Object.entries(o.resource ?? {})) c.push(`${attrRef(`resource.${k}`)} = ${quoteString(v)}`);
  return `{ ${c.join(' && ')} }`;
}

/** culpritQuery is the TraceQL of an anomaly culprit's spans: its operation, its version and its attribute condition. */
export function culpritQuery(c: Pick<Culprit, 'service' | 'operation' | 'kind' | 'version' | 'attribute'>): string {
  let q = opQuery({ service: c.service, operation: c.operation, kind: c.kind, resource: c.version ? { 'service.version': c.version } : undefined });
  const cond = c.attribute ? attrConditionToTraceQL(c.attribute) : null;
  if (cond && !(c.version && /^(resource:)?service\.version=/.test(c.attribute ?? ''))) q = addCondition(q, cond);
  return q;
}

/** deployQuery is the TraceQL of the spans of one side of a deployment: the service with the new (or the previous) value of its attribute. */
export function deployQuery(d: Pick<Deploy, 'service' | 'attribute' | 'value' | 'previous'>, side: 'new' | 'previous'): string {
  const v = side === 'new' ? d.value : d.previous;
  return opQuery({ service: d.service, resource: v ? { [d.attribute || 'service.version']: v } : undefined });
}

const scopeMap: Record<string, string> = { span: 'span.', resource: 'resource.', scope: 'instrumentation.', event: 'event.', link: 'link.', any: '.' };

/**
 * attrConditionToTraceQL turns a condition in the native search's attr
 * syntax (`[scope:]key OP value`, as anomaly culprits name them) into a
 * TraceQL comparison, or null when it cannot.
 */
export function attrConditionToTraceQL(cond: string): string | null {
  const m = /^(?:(span|resource|scope|event|link|any):)?([^=!<>~\s]+)\s*(=~|!~|!=|>=|<=|=|>|<)?\s*(.*)$/s.exec(cond.trim());
  if (!m) return null;
  const [, scope = 'any', key, op, raw] = m;
  const ref = attrRef(scopeMap[scope] === '.' ? key : scopeMap[scope] + key);
  if (!op) return `${ref} != nil`;
  if (/^".*"$/s.test(raw)) return `${ref} ${op} ${raw}`;
  if (op === '=~' || op === '!~') return `${ref} ${op} ${quoteString(raw)}`;
  if (/^-?\d+(\.\d+)?$/.test(raw) || raw === 'true' || raw === 'false') {
    // Untyped in the attr syntax, typed in TraceQL: an equality tests both.
    return op === '=' ? `(${ref} = ${raw} || ${ref} = ${quoteString(raw)})` : `${ref} ${op} ${raw}`;
  }
  return `${ref} ${op} ${quoteString(raw)}`;
}

/** RankKey is a ranked attribute's key split for display: its scope and its name. */
export interface RankKey {
  scope: 'resource' | 'span' | 'intrinsic' | 'other';
  name: string;
}

export function splitRankKey(key: string): RankKey {
  if (intrinsics.includes(key)) return { scope: 'intrinsic', name: key };
  const m = /^(resource|span)\.(.+)$/.exec(key);
  if (m) return { scope: m[1] as 'resource' | 'span', name: m[2] };
  return { scope: 'other', name: key };
}

/** rankCondition is the TraceQL condition of a ranked attribute value (an absent key is `= nil`), or null when there is none. */
export function rankCondition(a: RankedAttribute): string | null {
  if (a.missing) return `${attrRef(a.key)} = nil`;
  if (a.key === 'status' || a.key === 'kind') return /^[a-z]+$/.test(a.value) ? `${a.key} = ${a.value}` : null;
  if (intrinsics.includes(a.key)) return `${a.key} = ${quoteString(a.value)}`;
  const ref = attrRef(a.key);
  // The ranking gives values as text: a number or boolean may be either type.
  if (/^-?\d+(\.\d+)?$/.test(a.value) || a.value === 'true' || a.value === 'false') return `(${ref} = ${a.value} || ${ref} = ${quoteString(a.value)})`;
  return `${ref} = ${quoteString(a.value)}`;
}

/** addCondition adds a condition to a query made of one spanset filter, or returns the condition's own spanset. */
export function addCondition(q: string, cond: string): string {
  const t = q.trim();
  const m = /^\{([^{}]*)\}$/s.exec(t);
  if (m && !/\|\||\bselect\b/.test(m[1])) {
    const inner = m[1].trim();
    return inner ? `{ ${inner} && ${cond} }` : `{ ${cond} }`;
  }
  return `{ ${cond} }`;
}

/** Verdict display of a deployment. */
export const verdicts: Record<string, { label: string; cls: string; rank: number }> = {
  regressed: { label: 'Regressed', cls: 'bad', rank: 0 },
  improved: { label: 'Improved', cls: 'good', rank: 2 },
  no_change: { label: 'No change', cls: 'neutral', rank: 3 },
  insufficient_data: { label: 'Insufficient data', cls: 'unknown', rank: 4 },
};

export function verdictOf(v: string): { label: string; cls: string; rank: number } {
  return verdicts[v] ?? { label: humanize(v || 'pending'), cls: 'unknown', rank: 5 };
}

/** changeLabels name the per-operation tests' outcomes. */
const changeLabels: Record<string, string> = { slower: 'slower', faster: 'faster', more: 'more errors', fewer: 'fewer errors', no_change: 'no change', new: 'new', removed: 'removed' };

export function changeLabel(s: string): string {
  return changeLabels[s] ?? humanize(s);
}

export function changeClass(s: string): string {
  if (s === 'slower' || s === 'more' || s === 'new') return 'bad';
  if (s === 'faster' || s === 'fewer' || s === 'removed') return 'good';
  return 'neutral';
}

export const findingLabels: Record<string, string> = {
  critical_path_self: 'Slow on the critical path',
  n_plus_one: 'N+1 calls',
  serialized_fan_out: 'Serialized fan-out',
  sequential_calls: 'Sequential calls',
  retry: 'Retries',
  new_operation: 'New operation',
  more_calls: 'More calls',
  missing_operation: 'Missing operation',
};

export const issueLabels: Record<string, string> = {
  orphan_spans: 'Orphan spans',
  broken_propagation: 'Broken context propagation',
  clock_skew: 'Clock skew',
  missing_service_version: 'No service.version',
  missing_attributes: 'Missing semantic-convention attributes',
};

export const signalLabels: Record<string, string> = { latency: 'Latency', errors: 'Errors', throughput: 'Throughput', propagation: 'Propagation' };

export const measureLabels: Record<string, string> = { p50Ms: 'p50', p90Ms: 'p90', p99Ms: 'p99', errorRate: 'error rate', ratePerSecond: 'rate', rootShare: 'root share' };

export function humanize(s: string): string {
  const t = s.replace(/_/g, ' ');
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** formatMeasure renders a value of one of the anomaly measures. */
export function formatMeasure(measure: string, v: number): string {
  if (measure === 'errorRate' || measure === 'rootShare') return formatShare(v);
  if (measure === 'ratePerSecond') return `${v < 10 ? v.toFixed(2) : Math.round(v)}/s`;
  return formatMs(v);
}

/** formatMs renders milliseconds: 0.42 ms, 12.3 ms, 245 ms, 1.25 s. */
export function formatMs(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  const s = v < 0 ? '-' : '';
  if (a >= 60_000) return `${s}${(a / 60_000).toFixed(1)} min`;
  if (a >= 1000) return `${s}${(a / 1000).toFixed(2)} s`;
  if (a >= 100) return `${s}${Math.round(a)} ms`;
  if (a >= 10) return `${s}${a.toFixed(1)} ms`;
  if (a === 0) return '0 ms';
  return `${s}${a.toFixed(2)} ms`;
}

/** formatShare renders a fraction 0..1 as a percentage with sensible digits. */
export function formatShare(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  const p = x * 100;
  if (p === 0) return '0%';
  if (Math.abs(p) < 0.1) return `${p.toFixed(2)}%`;
  if (Math.abs(p) < 10) return `${p.toFixed(1)}%`;
  return `${Math.round(p)}%`;
}

/** formatPValue renders a p-value: p = 0.0012, p = 3e-9, p < 1e-300. */
export function formatPValue(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return '';
  if (p <= 0) return 'p < 1e-300';
  if (p >= 0.001) return `p = ${Number(p.toPrecision(2))}`;
  return `p = ${p.toExponential(1).replace('.0e', 'e')}`;
}

/** formatChange renders the relative change from previous to next: +263%, −12%, "new". */
export function formatChange(next: number, previous: number): string {
  if (!Number.isFinite(next) || !Number.isFinite(previous)) return '';
  if (previous === 0) return next === 0 ? '±0%' : 'new';
  const r = (next - previous) / previous;
  const p = Math.round(r * 100);
  return p > 0 ? `+${p}%` : p < 0 ? `−${-p}%` : '±0%';
}

export interface StackSegment {
  service: string;
  operation: string;
  /** fraction of the bar, 0..1, and where it starts */
  share: number;
  offset: number;
  ms: number;
}

/**
 * stackSegments lays one band (the median or the tail) of an aggregated
 * critical path out as a stacked bar: each operation's share of the
 * band's duration, largest first; shares that do not add up to 1 (the
 * samples of a band differ in duration) are scaled to fill the bar.
 */
export function stackSegments(cp: Pick<AggregatedCriticalPath, 'operations'>, band: 'p50' | 'tail'): StackSegment[] {
  const rows = (cp.operations ?? [])
    .map((o) => ({ service: o.service, operation: o.operation, share: Math.max(0, (band === 'p50' ? o.p50Share : o.tailShare) || 0), ms: (band === 'p50' ? o.p50Ms : o.tailMs) || 0 }))
    .filter((r) => r.share > 0)
    .sort((a, b) => b.share - a.share || a.service.localeCompare(b.service) || a.operation.localeCompare(b.operation));
  const total = rows.reduce((s, r) => s + r.share, 0);
  let offset = 0;
  return rows.map((r) => {
    const share = total > 0 ? r.share / total : 0;
    const seg = { ...r, share, offset };
    offset += share;
    return seg;
  });
}

/** severityClass buckets an anomaly severity (0..100) for colour. */
export function severityClass(s: number): string {
  return s >= 75 ? 'sev-high' : s >= 50 ? 'sev-mid' : 'sev-low';
}

/** scoreClass buckets an instrumentation score (0..100). */
export function scoreClass(s: number): string {
  return s >= 90 ? 'good' : s >= 70 ? 'fair' : 'bad';
}

/** findingSpans maps a finding's span IDs to the trace's span indices (those it has), in the finding's order. */
export function findingSpans(f: Pick<Finding, 'spanIDs'> | undefined, spanIndex: ReadonlyMap<string, number>): number[] {
  const out: number[] = [];
  for (const id of f?.spanIDs ?? []) {
    const i = spanIndex.get(id.toLowerCase()) ?? spanIndex.get(id.toLowerCase().padStart(16, '0'));
    if (i !== undefined && !out.includes(i)) out.push(i);
  }
  return out;
}
