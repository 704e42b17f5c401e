import { expect, test } from 'vitest';
import { parseTrace, splitNanos } from './otlp';

test('splitNanos keeps nanoseconds exact', () => {
  expect(splitNanos('1764000000123456789')).toEqual([1764000000, 123456789]);
  expect(splitNanos('42')).toEqual([0, 42]);
  expect(splitNanos(undefined)).toEqual([0, 0]);
});

test('parseTrace: exact relative times, values, events, links, status', () => {
  const t = parseTrace('abc', {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] },
        scopeSpans: [
          {
            scope: { name: 'lib', version: '1' },
            spans: [
              {
                traceId: 'ABC', spanId: 'B1', parentSpanId: 'a1', name: 'child', kind: 3,
                startTimeUnixNano: '1764000000000000001', endTimeUnixNano: '1764000000000000003',
                status: { code: 2, message: 'boom' },
                attributes: [
                  { key: 'n', value: { intValue: '9007199254740993' } },
                  { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'x' }, { intValue: '1' }] } } },
                ],
                events: [{ timeUnixNano: '1764000000000000002', name: 'exception', attributes: [{ key: 'exception.type', value: { stringValue: 'E' } }] }],
                links: [{ traceId: 'ff', spanId: 'ee' }],
              },
              { spanId: 'a1', name: 'root', startTimeUnixNano: '1764000000000000000', endTimeUnixNano: '1764000000000000010', status: { code: 'STATUS_CODE_OK' } },
            ],
          },
        ],
      },
    ],
  });
  expect(t.spans.map((s) => [s.name, s.start, s.end])).toEqual([['root', 0, 10], ['child', 1, 3]]);
  expect(t.duration).toBe(10);
  const c = t.spans[1];
  expect(c.spanId).toBe('b1');
  expect(c.attrs).toEqual([{ key: 'n', type: 'int', value: '9007199254740993' }, { key: 'arr', type: 'array', value: '["x",1]' }]);
  expect(c.events[0]).toMatchObject({ time: 2, name: 'exception' });
  expect(c.links[0]).toMatchObject({ traceId: 'ff', spanId: 'ee' });
  expect([c.status, c.statusMessage, t.spans[0].status]).toEqual([2, 'boom', 1]);
  expect(c.service).toBe('api');
});
