import { describe, expect, test } from 'vitest';
import { ancestors, buildTree, selfTimes, visibleRows } from './tree';
import { ids, mkTrace } from './testutil';

describe('buildTree', () => {
  const cases: { name: string; spans: Parameters<typeof mkTrace>[0]; preorder: string[]; roots: string[]; depth: Record<string, number>; issues?: Partial<Record<'missingParent' | 'duplicateIds' | 'cycles' | 'clockSkew', string[]>> }[] = [
    {
      name: 'simple tree, children in start order',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'b', parent: 'r', start: 50, end: 90 },
        { id: 'a', parent: 'r', start: 10, end: 40 },
        { id: 'a1', parent: 'a', start: 20, end: 30 },
      ],
      preorder: ['r', 'a', 'a1', 'b'],
      roots: ['r'],
      depth: { r: 0, a: 1, a1: 2, b: 1 },
    },
    {
      name: 'missing parent becomes top-level after the root',
      spans: [
        { id: 'orphan', parent: 'gone', start: 5, end: 10 },
        { id: 'r', start: 0, end: 100 },
        { id: 'c', parent: 'orphan', start: 6, end: 9 },
      ],
      preorder: ['r', 'orphan', 'c'],
      roots: ['r', 'orphan'],
      depth: { r: 0, orphan: 0, c: 1 },
      issues: { missingParent: ['orphan'] },
    },
    {
      name: 'no root at all',
      spans: [
        { id: 'x', parent: 'p1', start: 0, end: 10 },
        { id: 'y', parent: 'p2', start: 5, end: 10 },
      ],
      preorder: ['x', 'y'],
      roots: ['x', 'y'],
      depth: { x: 0, y: 0 },
      issues: { missingParent: ['x', 'y'] },
    },
    {
      name: 'self parent',
      spans: [{ id: 's', parent: 's', start: 0, end: 10 }],
      preorder: ['s'],
      roots: ['s'],
      depth: { s: 0 },
      issues: { missingParent: ['s'] },
    },
    {
      name: 'a loop of parents is broken at its earliest span',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'a', parent: 'b', start: 10, end: 20 },
        { id: 'b', parent: 'a', start: 15, end: 18 },
        { id: 'c', parent: 'b', start: 16, end: 17 },
      ],
      preorder: ['r', 'a', 'b', 'c'],
      roots: ['r', 'a'],
      depth: { r: 0, a: 0, b: 1, c: 2 },
      issues: { cycles: ['a'] },
    },
    {
      name: 'duplicate span IDs: children attach to the first, both shown',
      spans: [
        { id: 'r', start: 0, end: 100 },
        { id: 'd', parent: 'r', start: 10, end: 20 },
        { id: 'd', parent: 'r', start: 30, end: 40 },
        { id: 'k', parent: 'd', start: 12, end: 15 },
      ],
      preorder: ['r', 'd', 'k', 'd'],
      roots: ['r'],
      depth: { r: 0, k: 2 },
      issues: { duplicateIds: ['d'] },
    },
    {
      name: 'clock skew is reported, not repaired',
      spans: [
        { id: 'r', start: 10, end: 100 },
        { id: 'early', parent: 'r', start: 0, end: 50 },
        { id: 'late', parent: 'r', start: 60, end: 120 },
      ],
      preorder: ['r', 'early', 'late'],
      roots: ['r'],
      depth: { r: 0, early: 1, late: 1 },
      issues: { clockSkew: ['early', 'late'] },
    },
    {
      name: 'zero parent ID means root',
      spans: [{ id: 'r', parent: '0000000000000000', start: 0, end: 1 }],
      preorder: ['r'],
      roots: ['r'],
      depth: { r: 0 },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const t = mkTrace(c.spans);
      const tree = buildTree(t);
      expect(ids(t, tree.preorder)).toEqual(c.preorder);
      expect(ids(t, tree.roots)).toEqual(c.roots);
      for (const [id, d] of Object.entries(c.depth)) {
        const i = t.spans.findIndex((s) => s.spanId === id);
        expect(tree.depth[i], `depth of ${id}`).toBe(d);
      }
      for (const k of ['missingParent', 'duplicateIds', 'cycles', 'clockSkew'] as const) {
        expect(ids(t, tree.issues[k]), k).toEqual(c.issues?.[k] ?? []);
      }
      // Every span exactly once.
      expect(new Set(tree.preorder).size).toBe(t.spans.length);
      expect(tree.subtreeSize[tree.roots[0]]).toBeGreaterThanOrEqual(1);
    });
  }
});

test('visibleRows hides collapsed subtrees', () => {
  const t = mkTrace([
    { id: 'r', start: 0, end: 100 },
    { id: 'a', parent: 'r', start: 10, end: 40 },
    { id: 'a1', parent: 'a', start: 20, end: 30 },
    { id: 'a2', parent: 'a', start: 31, end: 35 },
    { id: 'b', parent: 'r', start: 50, end: 90 },
  ]);
  const tree = buildTree(t);
  const a = t.spans.findIndex((s) => s.spanId === 'a');
  expect(ids(t, visibleRows(tree, new Set([a])))).toEqual(['r', 'a', 'b']);
  expect(ids(t, visibleRows(tree, new Set([0])))).toEqual(['r']);
  expect(ids(t, visibleRows(tree, new Set()))).toEqual(['r', 'a', 'a1', 'a2', 'b']);
  expect(tree.subtreeSize[a]).toBe(3);
  expect(ids(t, ancestors(tree, t.spans.findIndex((s) => s.spanId === 'a2')))).toEqual(['a', 'r']);
});

test('selfTimes subtracts the union of children, clipped', () => {
  const t = mkTrace([
    { id: 'r', start: 0, end: 100 },
    { id: 'a', parent: 'r', start: 10, end: 40 },
    { id: 'b', parent: 'r', start: 30, end: 60 }, // overlaps a: union 10..60
    { id: 'c', parent: 'r', start: 90, end: 130 }, // clipped to 90..100
  ]);
  const self = selfTimes(buildTree(t));
  expect(self[0]).toBe(100 - 50 - 10);
  expect(self[1]).toBe(30);
});

test('a 100,000-deep chain builds without overflowing the stack', () => {
  const n = 100_000;
  const rows = Array.from({ length: n }, (_, i) => ({ id: `s${i}`, parent: i ? `s${i - 1}` : undefined, start: i, end: 2 * n - i }));
  const tree = buildTree(mkTrace(rows));
  expect(tree.maxDepth).toBe(n - 1);
  expect(tree.subtreeSize[0]).toBe(n);
});
