import { expect, test } from 'vitest';
import { formatDuration, niceTicks, parseDurationNs } from './format';

test.each([
  [0, '0 ns'],
  [999, '999 ns'],
  [1500, '1.5 µs'],
  [42_000_000, '42 ms'],
  [1_234_567_890, '1.23 s'],
  [125e9, '2m 5s'],
  [7_260e9, '2h 1m'],
  [-2e6, '-2 ms'],
])('formatDuration(%d) = %s', (ns, want) => expect(formatDuration(ns)).toBe(want));

test('niceTicks', () => {
  expect(niceTicks(100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
  expect(niceTicks(0)).toEqual([0]);
});

test.each([
  ['250ms', 250e6],
  ['1.5s', 1.5e9],
  ['1h30m', 5400e9],
  ['10us', 10e3],
  ['', undefined],
  ['fast', undefined],
])('parseDurationNs(%s)', (s, want) => expect(parseDurationNs(s)).toBe(want));
