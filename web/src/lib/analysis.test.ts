import { describe, expect, test } from 'vitest';
import type { RankedAttribute } from '../apitypes';
import { addCondition, attrConditionToTraceQL, culpritQuery, deployQuery, findingSpans, formatChange, formatMs, formatPValue, formatShare, opQuery, rankCondition, splitRankKey, stackSegments, verdictOf } from './analysis';

test('opQuery', () => {
  expect(opQuery({ service: 'checkout' })).toBe('{ resource.service.name = "checkout" }');
  expect(opQuery({ service: 'checkout', operation: 'GET /cart "x"', kind: 'server' })).toBe('{ resource.service.name = "checkout" && name = "GET /cart \\"x\\"" && kind = server }');
  expect(opQuery({ service: 'a', kind: 'bogus', resource: { 'service.version': '2.0.0', 'deployment.id': 'd-1' } })).toBe('{ resource.service.name = "a" && resource.service.version = "2.0.0" && resource.deployment.id = "d-1" }');
});

test.each([
  ['resource:service.version=2.0.0', 'resource.service.version = "2.0.0"'],
  ['span:http.response.status_code>=500', 'span.http.response.status_code >= 500'],
  ['span:http.response.status_code=503', '(span.http.response.status_code = 503 || span.http.response.status_code = "503")'],
  ['http.route="/cart"', '.http.route = "/cart"'],
  ['resource:host.name=~"web-.*"', 'resource.host.name =~ "web-.*"'],
  ['any:user.id!=42', '.user.id != 42'],
  ['resource:service.version="2.0"', 'resource.service.version = "2.0"'],
  ['error', '.error != nil'],
  ['span:peer.service=payments api', 'span.peer.service = "payments api"'],
])('attrConditionToTraceQL(%s) = %s', (cond, want) => expect(attrConditionToTraceQL(cond)).toBe(want));

const ranked = (key: string, value: string, missing = false): RankedAttribute => ({ key, value, missing, selectionCount: 1, baselineCount: 0, selectionShare: 1, baselineShare: 0, diff: 1, z: 3, pValue: 1e-3 });

describe('ranking display', () => {
  test('keys split into scope and name', () => {
    expect(splitRankKey('resource.service.version')).toEqual({ scope: 'resource', name: 'service.version' });
    expect(splitRankKey('span.http.route')).toEqual({ scope: 'span', name: 'http.route' });
    expect(splitRankKey('status')).toEqual({ scope: 'intrinsic', name: 'status' });
    expect(splitRankKey('weird')).toEqual({ scope: 'other', name: 'weird' });
  });
  test.each([
    [ranked('resource.service.version', '2.0.1'), 'resource.service.version = "2.0.1"'],
    [ranked('resource.service.version', '2.0'), '(resource.service.version = 2.0 || resource.service.version = "2.0")'],
    [ranked('span.http.response.status_code', '503'), '(span.http.response.status_code = 503 || span.http.response.status_code = "503")'],
    [ranked('name', 'GET /cart'), 'name = "GET /cart"'],
    [ranked('status', 'error'), 'status = error'],
    [ranked('kind', 'server'), 'kind = server'],
    [ranked('span.db.system', '', true), 'span.db.system = nil'],
    [ranked('status', 'Weird Value'), null],
  ])('rankCondition(%o) = %s', (a, want) => expect(rankCondition(a)).toBe(want));
  test('addCondition joins a spanset filter, or starts one', () => {
    expect(addCondition('{ resource.service.name = "a" }', 'status = error')).toBe('{ resource.service.name = "a" && status = error }');
    expect(addCondition('{ }', 'kind = server')).toBe('{ kind = server }');
    expect(addCondition('{ a = 1 } >> { b = 2 }', 'kind = server')).toBe('{ kind = server }');
    expect(addCondition('{ a = 1 || b = 2 }', 'kind = server')).toBe('{ kind = server }');
  });
});

describe('stackSegments', () => {
  const cp = {
    operations: [
      { service: 'inventory', operation: 'GET /stock', p50Ms: 3, tailMs: 60, p50Share: 0.2, tailShare: 0.8, presence: 1 },
      { service: 'catalog', operation: 'SELECT', p50Ms: 7, tailMs: 7, p50Share: 0.45, tailShare: 0.1, presence: 1 },
      { service: 'gateway', operation: 'GET /', p50Ms: 3, tailMs: 3, p50Share: 0.2, tailShare: 0.05, presence: 1 },
      { service: 'gateway', operation: 'rare', p50Ms: 0, tailMs: 1, p50Share: 0, tailShare: 0.01, presence: 0.1 },
    ],
  };
  test('largest share first, offsets adding up, scaled to fill the bar', () => {
    const p50 = stackSegments(cp, 'p50');
    expect(p50.map((s) => s.operation)).toEqual(['SELECT', 'GET /', 'GET /stock']);
    const total = 0.85;
    expect(p50[0].share).toBeCloseTo(0.45 / total);
    expect(p50[1].offset).toBeCloseTo(0.45 / total);
    expect(p50[2].offset + p50[2].share).toBeCloseTo(1);
    const tail = stackSegments(cp, 'tail');
    expect(tail.map((s) => s.operation)).toEqual(['GET /stock', 'SELECT', 'GET /', 'rare']);
    expect(tail[0].ms).toBe(60);
  });
  test('no operations, no segments', () => {
    expect(stackSegments({ operations: [] }, 'tail')).toEqual([]);
  });
});

test('verdicts', () => {
  expect(verdictOf('regressed')).toMatchObject({ label: 'Regressed', cls: 'bad' });
  expect(verdictOf('no_change').label).toBe('No change');
  expect(verdictOf('insufficient_data').label).toBe('Insufficient data');
  expect(verdictOf('something_else').label).toBe('Something else');
});

test.each([
  [0.42, '0.42 ms'],
  [12.345, '12.3 ms'],
  [245.6, '246 ms'],
  [1250, '1.25 s'],
  [0, '0 ms'],
  [-3.5, '-3.50 ms'],
  [NaN, '–'],
])('formatMs(%d) = %s', (v, want) => expect(formatMs(v)).toBe(want));

test('formatShare, formatPValue, formatChange', () => {
  expect(formatShare(0.1333)).toBe('13%');
  expect(formatShare(0.0047)).toBe('0.5%');
  expect(formatShare(0.0004)).toBe('0.04%');
  expect(formatShare(0)).toBe('0%');
  expect(formatPValue(0.0153)).toBe('p = 0.015');
  expect(formatPValue(2.3e-12)).toBe('p = 2.3e-12');
  expect(formatPValue(3e-9)).toBe('p = 3e-9');
  expect(formatPValue(0)).toBe('p < 1e-300');
  expect(formatChange(86.3, 23.9)).toBe('+261%');
  expect(formatChange(9, 10)).toBe('−10%');
  expect(formatChange(1, 0)).toBe('new');
});

test('culpritQuery: operation, version and attribute', () => {
  expect(culpritQuery({ service: 'checkout', operation: 'PlaceOrder', kind: 'server', version: '2.0.0', attribute: 'resource:service.version=2.0.0' })).toBe(
    '{ resource.service.name = "checkout" && name = "PlaceOrder" && kind = server && resource.service.version = "2.0.0" }',
  );
  expect(culpritQuery({ service: 'db', operation: 'SELECT', kind: 'client', attribute: 'span:db.namespace=orders' })).toBe('{ resource.service.name = "db" && name = "SELECT" && kind = client && span.db.namespace = "orders" }');
  expect(culpritQuery({ service: 'a', operation: 'op', kind: '' })).toBe('{ resource.service.name = "a" && name = "op" }');
});

test('deployQuery: each side of a deployment', () => {
  const d = { service: 'checkout', attribute: 'service.version', value: '2.0.0', previous: '1.4.2' };
  expect(deployQuery(d, 'new')).toBe('{ resource.service.name = "checkout" && resource.service.version = "2.0.0" }');
  expect(deployQuery(d, 'previous')).toBe('{ resource.service.name = "checkout" && resource.service.version = "1.4.2" }');
  expect(deployQuery({ ...d, attribute: 'deployment.id' }, 'new')).toBe('{ resource.service.name = "checkout" && resource.deployment.id = "2.0.0" }');
  expect(deployQuery({ ...d, previous: '' }, 'previous')).toBe('{ resource.service.name = "checkout" }');
});

test('findingSpans: the spans of a finding the trace has, once each', () => {
  const index = new Map([
    ['4000000000000004', 3],
    ['00000000000000ab', 5],
  ]);
  expect(findingSpans({ spanIDs: ['4000000000000004', 'AB', 'ffff000000000000', '4000000000000004'] }, index)).toEqual([3, 5]);
  expect(findingSpans({}, index)).toEqual([]);
  expect(findingSpans(undefined, index)).toEqual([]);
});
