import { expect, test } from 'vitest';
import { collapsedSet, findSpans } from './model';
import { criticalPath } from './critical';
import { summarize } from './summary';
import { buildTree } from './tree';
import { mkTrace } from './testutil';

const trace = mkTrace([
  { id: 'r', svc: 'front', name: 'GET /', start: 0, end: 100 },
  { id: 'a', parent: 'r', svc: 'db', name: 'SELECT', start: 10, end: 40, error: true },
  { id: 'b', parent: 'r', svc: 'cache', name: 'GET', start: 50, end: 90 },
  { id: 'b1', parent: 'b', svc: 'cache', name: 'lookup', start: 55, end: 60 },
]);

function model() {
  const tree = buildTree(trace);
  const cp = criticalPath(tree);
  return { trace, tree, cp, summary: summarize(tree, cp), spanIndex: new Map(trace.spans.map((s, i) => [s.spanId, i])), timing: { parse: 0, tree: 0, critical: 0, summary: 0 } };
}

test('summarize: services by critical time, errors, depth', () => {
  const s = model().summary;
  expect(s.spans).toBe(4);
  expect(s.errors).toBe(1);
  expect(s.depth).toBe(3);
  expect(s.rootName).toBe('GET /');
  expect(s.services.map((x) => [x.service, x.spans, x.errors, x.criticalTime, x.selfTime])).toEqual([
    ['cache', 2, 0, 40, 35 + 5],
    ['db', 1, 1, 30, 30],
    ['front', 1, 0, 30, 30],
  ]);
});

test('findSpans matches names, services and IDs, case-insensitively, in tree order', () => {
  const m = model();
  const names = (q: string) => findSpans(m, q).map((i) => trace.spans[i].spanId);
  expect(names('get')).toEqual(['r', 'b']);
  expect(names('CACHE')).toEqual(['b', 'b1']);
  expect(names('')).toEqual([]);
  expect(names('nothing')).toEqual([]);
});

test('collapsedSet: levels collapse deep parents, toggles flip single spans', () => {
  const m = model();
  const ids = (s: Set<number>) => [...s].map((i) => trace.spans[i].spanId).sort();
  expect(ids(collapsedSet(m, 0, new Set()))).toEqual([]);
  expect(ids(collapsedSet(m, 1, new Set()))).toEqual(['b', 'r']); // b is hidden under r anyway
  expect(ids(collapsedSet(m, 2, new Set()))).toEqual(['b']);
  expect(ids(collapsedSet(m, 2, new Set(['b'])))).toEqual([]);
  expect(ids(collapsedSet(m, 0, new Set(['r', 'a'])))).toEqual(['r']); // a has no children
});
