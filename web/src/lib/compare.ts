// Comparison of two traces by structure and latency. Spans are aligned by
// their path from the top of the tree: the chain of (service, operation)
// labels, with the occurrence number among siblings of the same label (the
// third "SELECT" under "GET /cart" in A matches the third in B). A pair
// whose duration changed by at least the thresholds is slower or faster;
// a span with no partner was added (only in B) or removed (only in A),
// and so is its whole subtree.

import { selfTimes, type TraceTree } from './tree';

export type DiffStatus = 'same' | 'slower' | 'faster' | 'added' | 'removed';

export interface CompareRow {
  /** the structural path: labels with occurrence numbers (see pathLabel) */
  key: string;
  depth: number;
  service: string;
  name: string;
  /** span index in A and in B, -1 when absent */
  a: number;
  b: number;
  durA: number;
  durB: number;
  /** durB - durA, ns (only meaningful when both are present) */
  delta: number;
  status: DiffStatus;
  /** index of the parent row, -1 at the top */
  parentRow: number;
  /** number of rows in this row's subtree, itself included */
  subtreeRows: number;
}

export interface OpDiff {
  service: string;
  name: string;
  countA: number;
  countB: number;
  totalA: number;
  totalB: number;
  selfA: number;
  selfB: number;
  /** selfB - selfA: where the time went */
  deltaSelf: number;
  status: DiffStatus;
}

export interface Comparison {
  rows: CompareRow[];
  byOp: OpDiff[];
  summary: { durA: number; durB: number; spansA: number; spansB: number; added: number; removed: number; slower: number; faster: number; same: number };
}

export interface CompareOptions {
  /** relative change (of A's duration) below which a pair counts as the same; default 0.1 */
  relThreshold?: number;
  /** absolute change in ns below which a pair counts as the same; default 100 µs */
  absThresholdNs?: number;
}

export function classify(durA: number, durB: number, opts: CompareOptions = {}): DiffStatus {
  const rel = opts.relThreshold ?? 0.1;
  const abs = opts.absThresholdNs ?? 100_000;
  const d = durB - durA;
  if (Math.abs(d) < abs || Math.abs(d) < rel * durA) return 'same';
  return d > 0 ? 'slower' : 'faster';
}

const SEP = '\u241f';
const PATH = '\u241e';

/** labelOf is a span's structural label: service and operation. */
function labelOf(tree: TraceTree, i: number): string {
  const s = tree.trace.spans[i];
  return s.service + SEP + s.name;
}

/** keyed gives each span of list its label with occurrence number, in order. */
function keyed(tree: TraceTree, list: readonly number[]): [string, number][] {
  const seen = new Map<string, number>();
  return list.map((i) => {
    const l = labelOf(tree, i);
    const occ = seen.get(l) ?? 0;
    seen.set(l, occ + 1);
    return [`${l}#${occ}`, i];
  });
}

interface Frame {
  a: number;
  b: number;
  key: string;
  depth: number;
  parentRow: number;
  only?: 'a' | 'b';
}

export function compareTraces(ta: TraceTree, tb: TraceTree, opts: CompareOptions = {}): Comparison {
  const rows: CompareRow[] = [];
  const sa = ta.trace.spans;
  const sb = tb.trace.spans;

  // merge returns the frames of the merged children of a (in A) and b (in
  // B), ordered by their start relative to their parent.
  const merge = (listA: readonly number[], listB: readonly number[], baseA: number, baseB: number, prefix: string, depth: number, parentRow: number, only?: 'a' | 'b'): Frame[] => {
    const ka = only === 'b' ? [] : keyed(ta, listA);
    const kb = only === 'a' ? [] : keyed(tb, listB);
    const inB = new Map(kb);
    const frames: (Frame & { rel: number })[] = [];
    for (const [k, i] of ka) {
      const j = inB.get(k);
      frames.push({ a: i, b: j ?? -1, key: prefix + k, depth, parentRow, only: j === undefined ? 'a' : only, rel: sa[i].start - baseA });
      if (j !== undefined) inB.delete(k);
    }
    for (const [k, j] of inB) {
      frames.push({ a: -1, b: j, key: prefix + k, depth, parentRow, only: 'b', rel: sb[j].start - baseB });
    }
    frames.sort((x, y) => x.rel - y.rel);
    return frames;
  };

  const stack: Frame[] = merge(ta.roots, tb.roots, 0, 0, '', 0, -1).reverse();
  while (stack.length) {
    const f = stack.pop()!;
    const spanA = f.a >= 0 ? sa[f.a] : undefined;
    const spanB = f.b >= 0 ? sb[f.b] : undefined;
    const durA = spanA?.duration ?? 0;
    const durB = spanB?.duration ?? 0;
    const status: DiffStatus = !spanB ? 'removed' : !spanA ? 'added' : classify(durA, durB, opts);
    const ref = spanA ?? spanB!;
    const row = rows.length;
    rows.push({ key: f.key, depth: f.depth, service: ref.service, name: ref.name, a: f.a, b: f.b, durA, durB, delta: spanA && spanB ? durB - durA : 0, status, parentRow: f.parentRow, subtreeRows: 1 });
    const kids = merge(spanA ? ta.children[f.a] : [], spanB ? tb.children[f.b] : [], spanA?.start ?? 0, spanB?.start ?? 0, f.key + PATH, f.depth + 1, row, f.only);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]);
  }
  for (let r = rows.length - 1; r >= 0; r--) {
    const p = rows[r].parentRow;
    if (p >= 0) rows[p].subtreeRows += rows[r].subtreeRows;
  }

  const summary = { durA: ta.trace.duration, durB: tb.trace.duration, spansA: sa.length, spansB: sb.length, added: 0, removed: 0, slower: 0, faster: 0, same: 0 };
  for (const r of rows) summary[r.status]++;
  return { rows, byOp: compareOperations(ta, tb, opts), summary };
}

/** compareOperations totals each (service, operation) in both traces, largest change in self time first. */
export function compareOperations(ta: TraceTree, tb: TraceTree, opts: CompareOptions = {}): OpDiff[] {
  const ops = new Map<string, OpDiff>();
  const add = (tree: TraceTree, side: 'A' | 'B') => {
    const self = selfTimes(tree);
    tree.trace.spans.forEach((s, i) => {
      const k = s.service + SEP + s.name;
      let o = ops.get(k);
      if (!o) ops.set(k, (o = { service: s.service, name: s.name, countA: 0, countB: 0, totalA: 0, totalB: 0, selfA: 0, selfB: 0, deltaSelf: 0, status: 'same' }));
      o[`count${side}`]++;
      o[`total${side}`] += s.duration;
      o[`self${side}`] += self[i];
    });
  };
  add(ta, 'A');
  add(tb, 'B');
  const out = [...ops.values()];
  for (const o of out) {
    o.deltaSelf = o.selfB - o.selfA;
    o.status = o.countA === 0 ? 'added' : o.countB === 0 ? 'removed' : classify(o.totalA, o.totalB, opts);
  }
  out.sort((x, y) => Math.abs(y.deltaSelf) - Math.abs(x.deltaSelf) || x.service.localeCompare(y.service) || x.name.localeCompare(y.name));
  return out;
}

/** pathLabel renders a row key for people: "svc: op > svc: op". */
export function pathLabel(key: string): string {
  return key
    .split(PATH)
    .map((p) => p.replace(/#\d+$/, '').replace(SEP, ': '))
    .join(' > ');
}
