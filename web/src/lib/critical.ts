// The critical path of a trace: the chain of work that decided its
// duration. Walking back from the root's end, the path goes into the child
// that finished last; from that child's start it goes into the child that
// finished last before it (a child that ran alongside a chosen one did not
// delay it and is left off), and the time no child covers is the parent's
// own. Children are clipped to their parent's window, so clock skew (a
// child ending after its parent) does not break the walk.
//
// The result covers the top span's time exactly, once, in chronological
// segments. The walk is iterative: a chain of 10,000 nested spans is fine.

import type { TraceTree } from './tree';

export interface CriticalSegment {
  span: number;
  /** ns since the trace start */
  start: number;
  end: number;
}

export interface CriticalPath {
  /** the top-level span the path starts from, -1 for an empty trace */
  top: number;
  /** segments in chronological order, contiguous, covering the top span */
  segments: CriticalSegment[];
  /** onPath[i] is 1 when span i is on the path (even with no self time on it) */
  onPath: Uint8Array;
  /** selfOnPath[i] is the time span i itself spends on the path */
  selfOnPath: Float64Array;
  /** segmentsBySpan maps a span to its segments (for drawing one row) */
  segmentsBySpan: Map<number, CriticalSegment[]>;
}

type Task = { kind: 'span'; span: number; ws: number; we: number } | { kind: 'self'; span: number; a: number; b: number };

/** topSpan picks the span the critical path starts from: the first true root, else the longest top-level span. */
export function topSpan(tree: TraceTree): number {
  const spans = tree.trace.spans;
  let best = -1;
  for (const r of tree.roots) {
    const isRoot = spans[r].parentId === '' || /^0*$/.test(spans[r].parentId);
    if (isRoot) return r;
    if (best < 0 || spans[r].duration > spans[best].duration) best = r;
  }
  return best;
}

export function criticalPath(tree: TraceTree, top = topSpan(tree)): CriticalPath {
  const spans = tree.trace.spans;
  const n = spans.length;
  const onPath = new Uint8Array(n);
  const selfOnPath = new Float64Array(n);
  const segmentsBySpan = new Map<number, CriticalSegment[]>();
  const out: CriticalSegment[] = [];
  if (top < 0 || top >= n) return { top: -1, segments: out, onPath, selfOnPath, segmentsBySpan };

  const stack: Task[] = [{ kind: 'span', span: top, ws: spans[top].start, we: spans[top].end }];
  while (stack.length) {
    const t = stack.pop()!;
    if (t.kind === 'self') {
      out.push({ span: t.span, start: t.a, end: t.b });
      continue;
    }
    onPath[t.span] = 1;
    // Children clipped to the window, latest end first.
    const kids: { c: number; cs: number; ce: number }[] = [];
    for (const c of tree.children[t.span]) {
      const cs = Math.max(spans[c].start, t.ws);
      const ce = Math.min(spans[c].end, t.we);
      if (ce > cs) kids.push({ c, cs, ce }); // instantaneous children take no time
    }
    kids.sort((x, y) => y.ce - x.ce || x.cs - y.cs);
    // Items in backward time order: self time after the last child, the
    // child, self time before it, the previous child, ...
    const items: Task[] = [];
    let cursor = t.we;
    for (const k of kids) {
      if (k.ce > cursor) continue; // ran alongside a chosen child
      if (k.ce < cursor) items.push({ kind: 'self', span: t.span, a: k.ce, b: cursor });
      items.push({ kind: 'span', span: k.c, ws: k.cs, we: k.ce });
      cursor = k.cs;
    }
    if (cursor > t.ws) items.push({ kind: 'self', span: t.span, a: t.ws, b: cursor });
    // The stack pops the latest item first, so the output is built in
    // reverse chronological order; push the earliest item first.
    for (let i = items.length - 1; i >= 0; i--) stack.push(items[i]);
  }
  out.reverse();
  for (const s of out) {
    selfOnPath[s.span] += s.end - s.start;
    let list = segmentsBySpan.get(s.span);
    if (!list) segmentsBySpan.set(s.span, (list = []));
    list.push(s);
  }
  return { top, segments: out, onPath, selfOnPath, segmentsBySpan };
}
