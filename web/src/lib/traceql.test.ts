import { describe, expect, test } from 'vitest';
import { completionContext, errorPosition, offsetOf, tokenize } from './traceql';

const types = (s: string) => tokenize(s).filter((t) => t.type !== 'ws').map((t) => `${t.type}:${t.text}`);

describe('tokenize', () => {
  test('a spanset filter', () => {
    expect(types('{ resource.service.name = "api" && span.http.status_code >= 500 && duration > 1.5ms }')).toEqual([
      'punct:{', 'attr:resource.service.name', 'op:=', 'string:"api"', 'op:&&', 'attr:span.http.status_code', 'op:>=', 'number:500',
      'op:&&', 'intrinsic:duration', 'op:>', 'duration:1.5ms', 'punct:}',
    ]);
  });
  test('unscoped, quoted, parent and scoped intrinsics', () => {
    expect(types('{ .a-b && span."x y".z && parent.span.q && span:status = error && kind = server }')).toEqual([
      'punct:{', 'attr:.a-b', 'op:&&', 'attr:span."x y".z', 'op:&&', 'attr:parent.span.q', 'op:&&', 'intrinsic:span:status', 'op:=', 'keyword:error',
      'op:&&', 'intrinsic:kind', 'op:=', 'keyword:server', 'punct:}',
    ]);
  });
  test('pipelines, structural operators, functions', () => {
    expect(types('{ } >> { .x } | count() > 2 | by(.y)')).toEqual([
      'punct:{', 'punct:}', 'op:>>', 'punct:{', 'attr:.x', 'punct:}', 'punct:|', 'func:count', 'punct:(', 'punct:)', 'op:>', 'number:2',
      'punct:|', 'func:by', 'punct:(', 'attr:.y', 'punct:)',
    ]);
  });
  test('bad input never throws', () => {
    expect(types('{ "open')).toEqual(['punct:{', 'string:"open']);
    expect(tokenize('{ "open')[2].open).toBe(true);
    expect(types('§')).toEqual(['error:§']);
    expect(tokenize('{ .x = 1h30m }').map((t) => t.type)).toContain('duration');
  });
  test('tokens cover the input', () => {
    const s = '{ .a = "b" } && { span:name =~ `x.*` } | select(.c)§';
    expect(tokenize(s).map((t) => t.text).join('')).toBe(s);
  });
});

describe('completionContext', () => {
  const at = (s: string) => completionContext(s.replace('|', ''), s.indexOf('|'));
  test('attribute after {', () => expect(at('{ |')).toEqual({ kind: 'attr', prefix: '', from: 2, to: 2 }));
  test('attribute being typed', () => expect(at('{ resource.ser|')).toEqual({ kind: 'attr', prefix: 'resource.ser', from: 2, to: 14 }));
  test('attribute after &&', () => expect(at('{ .a = 1 && sp|')).toEqual({ kind: 'attr', prefix: 'sp', from: 12, to: 14 }));
  test('value after operator', () => expect(at('{ resource.service.name = |')).toEqual({ kind: 'value', attr: 'resource.service.name', prefix: '', from: 26, to: 26 }));
  test('value being typed in quotes', () => expect(at('{ resource.service.name = "fro|')).toEqual({ kind: 'value', attr: 'resource.service.name', prefix: 'fro', from: 26, to: 30 }));
  test('status value', () => expect(at('{ status = e|')).toEqual({ kind: 'value', attr: 'status', prefix: 'e', from: 11, to: 12 }));
  test('nothing after a closed string', () => expect(at('{ .a = "x"|')).toBeNull());
  test('nothing after a value', () => expect(at('{ .a = 1 |')).toBeNull());
  test('nothing in an empty editor', () => expect(at('|')).toBeNull());
});

describe('error positions', () => {
  test('from the native position (bytes)', () => {
    expect(errorPosition('{ .é = }', 'x', { start: 8, end: 9, line: 1, column: 8 })).toEqual({ start: 7, end: 8, line: 1, column: 8 });
  });
  test('from a line:col message', () => {
    expect(errorPosition('{ .a =\n }', 'invalid TraceQL query: 2:2: unexpected "}"')).toEqual({ start: 8, end: 9, line: 2, column: 2 });
  });
  test('no position', () => expect(errorPosition('{', 'boom')).toBeNull());
  test('offsetOf counts code points', () => expect(offsetOf('😀ab', 1, 2)).toBe(2));
});
