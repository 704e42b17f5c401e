import { describe, expect, test } from 'vitest';
import { criticalPath } from './critical';
import { buildTree } from './tree';
import { mkTrace, type S } from './testutil';

type Seg = [string, number, number];

function path(rows: S[]): { segs: Seg[]; onPath: string[] } {
  const t = mkTrace(rows);
  const cp = criticalPath(buildTree(t));
  // Invariants: contiguous, chronological, covering the top span exactly.
  const top = t.spans[cp.top];
  let at = top.start;
  for (const s of cp.segments) {
    expect(s.start).toBe(at);
    expect(s.end).toBeGreaterThan(s.start);
    at = s.end;
  }
  expect(at).toBe(top.end);
  return {
    segs: cp.segments.map((s) => [t.spans[s.span].spanId, s.start, s.end]),
    onPath: t.spans.filter((_, i) => cp.onPath[i]).map((s) => s.spanId),
  };
}

describe('criticalPath', () => {
  const cases: { name: string; spans: S[]; want: Seg[]; onPath?: string[] }[] = [
    { name: 'lone span', spans: [{ id: 'r', start: 0, end: 10 }], want: [['r', 0, 10]] },
    {
      name: 'sequential children',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'a', parent: 'r', start: 10, end: 40 },
        { id: 'b', parent: 'r', start: 50, end: 90 },
      ],
      want: [['r', 0, 10], ['a', 10, 40], ['r', 40, 50], ['b', 50, 90], ['r', 90, 100]],
    },
    {
      name: 'parallel children: the last to finish, not the one alongside it',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'long', parent: 'r', start: 10, end: 80 },
        { id: 'short', parent: 'r', start: 20, end: 60 },
      ],
      want: [['r', 0, 10], ['long', 10, 80], ['r', 80, 100]],
      onPath: ['r', 'long'],
    },
    {
      name: 'fan-out then a call that waited for it',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'p1', parent: 'r', start: 5, end: 30 },
        { id: 'p2', parent: 'r', start: 5, end: 45 },
        { id: 'p3', parent: 'r', start: 6, end: 20 },
        { id: 'after', parent: 'r', start: 50, end: 95 },
      ],
      want: [['r', 0, 5], ['p2', 5, 45], ['r', 45, 50], ['after', 50, 95], ['r', 95, 100]],
    },
    {
      name: 'nested',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'a', parent: 'r', start: 10, end: 90 },
        { id: 'a1', parent: 'a', start: 20, end: 50 },
      ],
      want: [['r', 0, 10], ['a', 10, 20], ['a1', 20, 50], ['a', 50, 90], ['r', 90, 100]],
    },
    {
      name: 'child ending after its parent (clock skew) is clipped',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'skewed', parent: 'r', start: 50, end: 130 },
      ],
      want: [['r', 0, 50], ['skewed', 50, 100]],
    },
    {
      name: 'child starting before its parent is clipped',
      spans: [
        { id: 'early', parent: 'r', start: 0, end: 30 },
        { id: 'r', start: 10, end: 100 },
      ],
      want: [['early', 10, 30], ['r', 30, 100]],
    },
    {
      name: 'child covering the whole parent leaves no self time',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'all', parent: 'r', start: 0, end: 100 },
      ],
      want: [['all', 0, 100]],
      onPath: ['r', 'all'],
    },
    {
      name: 'instantaneous child is skipped',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'zero', parent: 'r', start: 50, end: 50 },
      ],
      want: [['r', 0, 100]],
      onPath: ['r'],
    },
    {
      name: 'no true root: the longest top-level span',
      spans: [
        { id: 'o1', parent: 'gone', start: 0, end: 10 },
        { id: 'o2', parent: 'gone', start: 5, end: 50 },
      ],
      want: [['o2', 5, 50]],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = path(c.spans);
      expect(got.segs).toEqual(c.want);
      if (c.onPath) expect(got.onPath).toEqual(c.onPath);
    });
  }

  test('a 10,000-deep chain', () => {
    const n = 10_000;
    const rows = Array.from({ length: n }, (_, i) => ({ id: `s${i}`, parent: i ? `s${i - 1}` : undefined, start: i, end: 2 * n - i }));
    const got = path(rows);
    expect(got.segs.length).toBe(2 * n - 1);
    expect(got.onPath.length).toBe(n);
  });

  test('self time on the path sums to the duration', () => {
    const t = mkTrace([
      { id: 'r', start: 0, end: 100 },
      { id: 'a', parent: 'r', start: 10, end: 40 },
      { id: 'b', parent: 'r', start: 50, end: 90 },
    ]);
    const cp = criticalPath(buildTree(t));
    expect(Array.from(cp.selfOnPath).reduce((x, y) => x + y, 0)).toBe(100);
    expect(cp.segmentsBySpan.get(0)?.length).toBe(3);
  });
});
