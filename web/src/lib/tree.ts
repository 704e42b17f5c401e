// The span tree of a trace, built to survive bad data: spans whose parent
// has not arrived, duplicate span IDs, a span that is its own parent, and
// parent chains that loop. Every span appears exactly once in the tree.

import type { Trace } from './otlp';

export interface TreeIssues {
  /** spans whose parent is not in the trace (shown as extra top-level spans) */
  missingParent: number[];
  /** later spans repeating an earlier span's ID (children attach to the first) */
  duplicateIds: number[];
  /** spans whose parent chain loops back (detached to break the loop) */
  cycles: number[];
  /** children that start before their parent or end after it */
  clockSkew: number[];
}

export interface TraceTree {
  trace: Trace;
  /** parent[i] is the parent's index, or -1 for a top-level span */
  parent: Int32Array;
  /** children[i] are i's children in start order */
  children: number[][];
  /** top-level spans: true roots first, then spans with a missing parent, then loop breaks; each by start */
  roots: number[];
  depth: Int32Array;
  maxDepth: number;
  /** every span in depth-first order (children in start order) */
  preorder: Int32Array;
  /** position of each span in preorder */
  preorderPos: Int32Array;
  /** number of spans in i's subtree, i included */
  subtreeSize: Int32Array;
  issues: TreeIssues;
}

const zeroId = /^0*$/;

/** buildTree builds the span tree of trace (whose spans are in start order). */
export function buildTree(trace: Trace): TraceTree {
  const spans = trace.spans;
  const n = spans.length;
  const parent = new Int32Array(n).fill(-1);
  const children: number[][] = Array.from({ length: n }, () => []);
  const issues: TreeIssues = { missingParent: [], duplicateIds: [], cycles: [], clockSkew: [] };
  const byId = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = spans[i].spanId;
    if (byId.has(id)) issues.duplicateIds.push(i);
    else byId.set(id, i);
  }
  const trueRoots: number[] = [];
  const orphans: number[] = [];
  for (let i = 0; i < n; i++) {
    const pid = spans[i].parentId;
    if (pid === '' || zeroId.test(pid)) {
      trueRoots.push(i);
      continue;
    }
    const p = byId.get(pid);
    if (p === undefined || p === i) {
      orphans.push(i);
      issues.missingParent.push(i);
      continue;
    }
    parent[i] = p;
    children[p].push(i);
  }
  const visited = new Uint8Array(n);
  const mark = (top: number) => {
    const stack = [top];
    while (stack.length) {
      const v = stack.pop()!;
      if (visited[v]) continue;
      visited[v] = 1;
      for (const c of children[v]) if (!visited[c]) stack.push(c);
    }
  };
  for (const r of trueRoots) mark(r);
  for (const r of orphans) mark(r);
  // What is left hangs from a loop of parents: detach the earliest such
  // span from its parent and make it top-level, until nothing is left.
  const breaks: number[] = [];
  for (let i = 0; i < n; i++) {
    if (visited[i]) continue;
    const p = parent[i];
    if (p >= 0) {
      const sib = children[p];
      sib.splice(sib.indexOf(i), 1);
    }
    parent[i] = -1;
    breaks.push(i);
    issues.cycles.push(i);
    mark(i);
  }
  const roots = [...trueRoots, ...orphans, ...breaks];

  const depth = new Int32Array(n);
  const subtreeSize = new Int32Array(n).fill(1);
  const preorder = new Int32Array(n);
  const preorderPos = new Int32Array(n);
  let maxDepth = 0;
  let k = 0;
  // Iterative depth-first walk: deep traces must not overflow the stack.
  const stack: number[] = [];
  for (let r = roots.length - 1; r >= 0; r--) stack.push(roots[r]);
  while (stack.length) {
    const v = stack.pop()!;
    preorderPos[v] = k;
    preorder[k++] = v;
    const p = parent[v];
    if (p >= 0) {
      depth[v] = depth[p] + 1;
      if (depth[v] > maxDepth) maxDepth = depth[v];
      const sp = spans[v];
      const pp = spans[p];
      if (sp.start < pp.start || sp.end > pp.end) issues.clockSkew.push(v);
    }
    const cs = children[v];
    for (let c = cs.length - 1; c >= 0; c--) stack.push(cs[c]);
  }
  // Subtree sizes: children come after their parent in preorder.
  for (let j = n - 1; j >= 0; j--) {
    const v = preorder[j];
    const p = parent[v];
    if (p >= 0) subtreeSize[p] += subtreeSize[v];
  }
  return { trace, parent, children, roots, depth, maxDepth, preorder, preorderPos, subtreeSize, issues };
}

/**
 * visibleRows returns the spans shown when the spans in collapsed hide
 * their descendants, in preorder.
 */
export function visibleRows(tree: TraceTree, collapsed: ReadonlySet<number>): Int32Array {
  const n = tree.preorder.length;
  if (collapsed.size === 0) return tree.preorder;
  const out = new Int32Array(n);
  let k = 0;
  for (let j = 0; j < n; ) {
    const v = tree.preorder[j];
    out[k++] = v;
    j += collapsed.has(v) ? tree.subtreeSize[v] : 1;
  }
  return out.slice(0, k);
}

/** ancestors returns i's ancestors, nearest first. */
export function ancestors(tree: TraceTree, i: number): number[] {
  const out: number[] = [];
  for (let p = tree.parent[i]; p >= 0; p = tree.parent[p]) out.push(p);
  return out;
}

/** selfTimes returns each span's time not covered by any of its children (clipped to the span). */
export function selfTimes(tree: TraceTree): Float64Array {
  const spans = tree.trace.spans;
  const out = new Float64Array(spans.length);
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i];
    const ivs: [number, number][] = [];
    for (const c of tree.children[i]) {
      const a = Math.max(spans[c].start, s.start);
      const b = Math.min(spans[c].end, s.end);
      if (b > a) ivs.push([a, b]);
    }
    ivs.sort((x, y) => x[0] - y[0]);
    let covered = 0;
    let curA = -Infinity;
    let curB = -Infinity;
    for (const [a, b] of ivs) {
      if (a > curB) {
        if (curB > curA) covered += curB - curA;
        curA = a;
        curB = b;
      } else if (b > curB) curB = b;
    }
    if (curB > curA) covered += curB - curA;
    out[i] = Math.max(0, s.duration - covered);
  }
  return out;
}
