import { describe, expect, test } from 'vitest';
import { attrRef, buildTraceQL, emptyForm, parseBuilder, type BuilderForm } from './builder';

describe('buildTraceQL', () => {
  const cases: [string, Partial<BuilderForm>, string][] = [
    ['empty', {}, '{ }'],
    ['service and operation', { service: 'checkout', operation: 'POST /cart' }, '{ resource.service.name = "checkout" && name = "POST /cart" }'],
    ['status and durations', { status: 'error', minDuration: '100ms', maxDuration: '2s' }, '{ status = error && duration >= 100ms && duration <= 2s }'],
    ['kind', { kind: 'server' }, '{ kind = server }'],
    [
      'attributes: numbers bare, strings quoted, regex quoted, exists',
      {
        attrs: [
          { key: 'http.response.status_code', op: '>=', value: '500' },
          { key: 'resource.host.name', op: '=~', value: 'web-.*' },
          { key: 'user.id', op: '=', value: '"42"' },
          { key: 'span.db.statement', op: 'exists', value: '' },
          { key: 'weird key', op: '=', value: 'a "b"' },
        ],
      },
      '{ .http.response.status_code >= 500 && resource.host.name =~ "web-.*" && .user.id = "42" && span.db.statement != nil && ."weird key" = "a \\"b\\"" }',
    ],
  ];
  for (const [name, f, want] of cases) {
    test(name, () => {
      const form = { ...emptyForm(), ...f };
      const q = buildTraceQL(form);
      expect(q).toBe(want);
      // Reading the query back gives a form that writes the same query.
      const back = parseBuilder(q);
      expect(back).not.toBeNull();
      expect(buildTraceQL(back!)).toBe(want);
    });
  }
});

describe('parseBuilder', () => {
  test('reads the fields', () => {
    expect(parseBuilder('{ resource.service.name = "a" && status = error && .x = "1" }')).toEqual({
      ...emptyForm(),
      service: 'a',
      status: 'error',
      attrs: [{ key: 'x', op: '=', value: '"1"' }],
    });
  });
  const refused = ['{ .a } && { .b }', '{ .a = 1 || .b = 2 }', '{ } | count() > 1', '{ .a = 1 && }', '{ .a }', '{ .a = "x', 'nonsense'];
  for (const q of refused) test(`refuses ${q}`, () => expect(parseBuilder(q)).toBeNull());
  test('empty query is an empty form', () => expect(parseBuilder('')).toEqual(emptyForm()));
});

test('attrRef', () => {
  expect(attrRef('http.route')).toBe('.http.route');
  expect(attrRef('span.http.route')).toBe('span.http.route');
  expect(attrRef('duration')).toBe('duration');
  expect(attrRef('resource.a b')).toBe('resource."a b"');
});
