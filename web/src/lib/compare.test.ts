import { describe, expect, test } from 'vitest';
import { classify, compareTraces, pathLabel } from './compare';
import { buildTree } from './tree';
import { mkTrace, type S } from './testutil';

const ms = 1e6;

function cmp(a: S[], b: S[]) {
  return compareTraces(buildTree(mkTrace(a, 'A')), buildTree(mkTrace(b, 'B')));
}

describe('classify', () => {
  const cases: [number, number, string][] = [
    [100 * ms, 100 * ms, 'same'],
    [100 * ms, 105 * ms, 'same'], // 5% < 10%
    [100 * ms, 150 * ms, 'slower'],
    [100 * ms, 50 * ms, 'faster'],
    [10_000, 30_000, 'same'], // 20 µs change: under 100 µs
    [0, 1 * ms, 'slower'],
  ];
  for (const [a, b, want] of cases) test(`${a} -> ${b}: ${want}`, () => expect(classify(a, b)).toBe(want));
});

describe('compareTraces', () => {
  const base: S[] = [
    { id: 'r', svc: 'front', name: 'GET /cart', start: 0, end: 100 * ms },
    { id: 'q1', parent: 'r', svc: 'db', name: 'SELECT', start: 1 * ms, end: 11 * ms },
    { id: 'q2', parent: 'r', svc: 'db', name: 'SELECT', start: 12 * ms, end: 22 * ms },
    { id: 'c', parent: 'r', svc: 'cache', name: 'GET', start: 30 * ms, end: 31 * ms },
  ];

  test('identical structure, one child slower, one removed, one added', () => {
    const b: S[] = [
      { id: 'R', svc: 'front', name: 'GET /cart', start: 0, end: 160 * ms },
      { id: 'Q1', parent: 'R', svc: 'db', name: 'SELECT', start: 1 * ms, end: 11 * ms },
      { id: 'Q2', parent: 'R', svc: 'db', name: 'SELECT', start: 12 * ms, end: 82 * ms },
      { id: 'P', parent: 'R', svc: 'pay', name: 'charge', start: 90 * ms, end: 150 * ms },
      { id: 'P1', parent: 'P', svc: 'bank', name: 'auth', start: 91 * ms, end: 140 * ms },
    ];
    const res = cmp(base, b);
    const rows = res.rows.map((r) => [pathLabel(r.key), r.status, r.depth]);
    expect(rows).toEqual([
      ['front: GET /cart', 'slower', 0],
      ['front: GET /cart > db: SELECT', 'same', 1],
      ['front: GET /cart > db: SELECT', 'slower', 1],
      ['front: GET /cart > cache: GET', 'removed', 1],
      ['front: GET /cart > pay: charge', 'added', 1],
      ['front: GET /cart > pay: charge > bank: auth', 'added', 2],
    ]);
    expect(res.rows[2].delta).toBe(60 * ms);
    expect(res.rows[0].subtreeRows).toBe(6);
    expect(res.rows[4].subtreeRows).toBe(2);
    expect(res.summary).toMatchObject({ added: 2, removed: 1, slower: 2, same: 1, faster: 0, spansA: 4, spansB: 5 });
  });

  test('occurrences align by order among same-label siblings', () => {
    const b: S[] = [
      { id: 'R', svc: 'front', name: 'GET /cart', start: 0, end: 100 * ms },
      { id: 'Q1', parent: 'R', svc: 'db', name: 'SELECT', start: 1 * ms, end: 11 * ms },
      { id: 'Q2', parent: 'R', svc: 'db', name: 'SELECT', start: 12 * ms, end: 22 * ms },
      { id: 'Q3', parent: 'R', svc: 'db', name: 'SELECT', start: 23 * ms, end: 33 * ms },
      { id: 'C', parent: 'R', svc: 'cache', name: 'GET', start: 40 * ms, end: 41 * ms },
    ];
    const res = cmp(base, b);
    const selects = res.rows.filter((r) => r.name === 'SELECT');
    expect(selects.map((r) => r.status)).toEqual(['same', 'same', 'added']);
    expect(selects[2].a).toBe(-1);
  });

  test('different roots are removed and added whole', () => {
    const b: S[] = [{ id: 'X', svc: 'other', name: 'job', start: 0, end: 5 * ms }];
    const res = cmp(base, b);
    expect(res.rows.filter((r) => r.status === 'removed').length).toBe(4);
    expect(res.rows.filter((r) => r.status === 'added').length).toBe(1);
  });

  test('by operation: self time deltas, largest first', () => {
    const b: S[] = [
      { id: 'R', svc: 'front', name: 'GET /cart', start: 0, end: 100 * ms },
      { id: 'Q1', parent: 'R', svc: 'db', name: 'SELECT', start: 1 * ms, end: 51 * ms },
    ];
    const ops = cmp(base, b).byOp;
    expect(ops[0]).toMatchObject({ service: 'db', name: 'SELECT', countA: 2, countB: 1, totalA: 20 * ms, totalB: 50 * ms, status: 'slower' });
    expect(ops.find((o) => o.service === 'cache')?.status).toBe('removed');
  });

  test('comparing a trace with itself: all the same', () => {
    const res = cmp(base, base);
    expect(res.rows.every((r) => r.status === 'same' && r.delta === 0)).toBe(true);
  });
});
