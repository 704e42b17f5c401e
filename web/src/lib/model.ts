// Everything the trace view derives from a trace once: the tree, the
// critical path, the summary, and a search index for find-in-trace.

import { criticalPath, type CriticalPath } from './critical';
import { parseTrace, type Span, type Trace } from './otlp';
import { summarize, type TraceSummary } from './summary';
import { buildTree, type TraceTree } from './tree';

export interface TraceModel {
  trace: Trace;
  tree: TraceTree;
  cp: CriticalPath;
  summary: TraceSummary;
  /** spanIndex maps a span ID to its (first) index */
  spanIndex: Map<string, number>;
  /** timings of building the model, ms */
  timing: { parse: number; tree: number; critical: number; summary: number };
}

export function buildModel(traceId: string, json: unknown): TraceModel {
  const t0 = performance.now();
  const trace = parseTrace(traceId, json);
  const t1 = performance.now();
  const tree = buildTree(trace);
  const t2 = performance.now();
  const cp = criticalPath(tree);
  const t3 = performance.now();
  const summary = summarize(tree, cp);
  const t4 = performance.now();
  const spanIndex = new Map<string, number>();
  trace.spans.forEach((s, i) => {
    if (!spanIndex.has(s.spanId)) spanIndex.set(s.spanId, i);
  });
  return { trace, tree, cp, summary, spanIndex, timing: { parse: t1 - t0, tree: t2 - t1, critical: t3 - t2, summary: t4 - t3 } };
}

function spanText(s: Span): string {
  const parts = [s.name, s.service, s.spanId, s.statusMessage];
  for (const a of s.attrs) parts.push(a.key, a.value.length > 500 ? a.value.slice(0, 500) : a.value);
  for (const e of s.events) {
    parts.push(e.name);
    for (const a of e.attrs) parts.push(a.value.length > 500 ? a.value.slice(0, 500) : a.value);
  }
  return parts.join('\u0000').toLowerCase();
}

const textCache = new WeakMap<Trace, string[]>();

/** findSpans returns the spans whose name, service, ID, status message, attributes, event names or event attribute values contain text, in tree order. */
export function findSpans(model: TraceModel, text: string): number[] {
  const q = text.trim().toLowerCase();
  if (!q) return [];
  let texts = textCache.get(model.trace);
  if (!texts) textCache.set(model.trace, (texts = model.trace.spans.map(spanText)));
  const out: number[] = [];
  for (const i of model.tree.preorder) if (texts[i].includes(q)) out.push(i);
  return out;
}

/**
 * collapsedSet computes the collapsed spans: with a level limit, spans at
 * that depth or deeper that have children; toggled flips individual spans.
 */
export function collapsedSet(model: TraceModel, levels: number, toggled: ReadonlySet<string>): Set<number> {
  const out = new Set<number>();
  const { tree, trace } = model;
  for (let i = 0; i < trace.spans.length; i++) {
    if (tree.children[i].length === 0) continue;
    const byLevel = levels > 0 && tree.depth[i] >= levels - 1;
    if (byLevel !== toggled.has(trace.spans[i].spanId)) out.add(i);
  }
  return out;
}
