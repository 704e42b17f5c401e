import { describe, expect, test } from 'vitest';
import type { Baseline, REDPoint } from '../apitypes';
import { bandOf, chartGeometry, linePath, nearestIndex, outsideBand, pointValue, seriesRate, serviceBand, stepMs, timeTicks } from './series';

const pt = (t: string, calls: number, p90: number, errors = 0): REDPoint => ({ t, calls, errors, ratePerSecond: calls / 60, errorRate: calls ? errors / calls : 0, p50Ms: p90 / 2, p90Ms: p90, p99Ms: p90 * 2 });

const band = (expected: number, low: number, high: number) => ({ expected, low, high });
const baseline = (service: string, operation: string, kind: string, sufficient = true, p90 = band(30, 25, 40), rate = band(1, 0.5, 1.5)): Baseline => ({
  service,
  operation,
  kind,
  mode: 'trailing',
  start: '2026-03-02T10:00:00Z',
  end: '2026-03-02T10:20:00Z',
  minutes: 20,
  calls: 100,
  errors: 1,
  sufficient,
  p50Ms: band(10, 8, 12),
  p90Ms: p90,
  p99Ms: band(90, 80, 120),
  errorRate: band(0.01, 0, 0.03),
  ratePerSecond: rate,
});

describe('pointValue', () => {
  test('a step without calls has a rate of zero but no latency or error rate', () => {
    const empty = pt('2026-03-02T10:00:00Z', 0, 0);
    expect(pointValue(empty, 'rate')).toBe(0);
    expect(pointValue(empty, 'p90')).toBeNull();
    expect(pointValue(empty, 'errors')).toBeNull();
  });
  test('values of a step with calls', () => {
    const p = pt('2026-03-02T10:00:00Z', 120, 80, 6);
    expect(pointValue(p, 'rate')).toBe(2);
    expect(pointValue(p, 'p50')).toBe(40);
    expect(pointValue(p, 'p99')).toBe(160);
    expect(pointValue(p, 'errors')).toBe(0.05);
  });
  test('with the step, the rate comes from the calls (the answer rounds ratePerSecond)', () => {
    const p = { ...pt('2026-03-02T10:00:00Z', 3, 10), ratePerSecond: 0 };
    expect(pointValue(p, 'rate', 3_600_000)).toBeCloseTo(3 / 3600);
    expect(pointValue(p, 'rate')).toBe(0);
  });
});

test.each([
  ['1m0s', 60_000],
  ['5m0s', 300_000],
  ['1h0m0s', 3_600_000],
  ['24h0m0s', 86_400_000],
])('stepMs(%s) = %d', (s, want) => expect(stepMs(s, [])).toBe(want));

test('stepMs infers the step from the points without one', () => {
  expect(stepMs('', [{ t: '2026-03-02T10:00:00Z' }, { t: '2026-03-02T10:02:00Z' }])).toBe(120_000);
  expect(stepMs(undefined, [])).toBe(60_000);
});

describe('bands', () => {
  test('an operation band; none when the baseline has too little data', () => {
    expect(bandOf(baseline('a', 'op', 'server'), 'p90')).toEqual(band(30, 25, 40));
    expect(bandOf(baseline('a', 'op', 'server', false), 'p90')).toBeNull();
    expect(bandOf(undefined, 'rate')).toBeNull();
  });
  test('a band whose expected value lies outside its bounds is widened to hold it', () => {
    expect(bandOf(baseline('a', 'op', 'server', true, band(50, 25, 40)), 'p90')).toEqual(band(50, 25, 50));
  });
  test('a service band: rates add up over entry operations, latency only with one entry operation', () => {
    const bs = [baseline('a', 'GET /x', 'server'), baseline('a', 'SELECT', 'client', true, band(3, 2, 4), band(9, 9, 9)), baseline('b', 'GET /y', 'server')];
    expect(serviceBand(bs, 'a', 'p90')).toEqual(band(30, 25, 40));
    expect(serviceBand(bs, 'a', 'rate')).toEqual(band(1, 0.5, 1.5));
    const two = [...bs, baseline('a', 'consume', 'consumer', true, band(5, 4, 6), band(2, 1, 3))];
    expect(serviceBand(two, 'a', 'rate')).toEqual(band(3, 1.5, 4.5));
    expect(serviceBand(two, 'a', 'p90')).toBeNull();
    expect(serviceBand(two, 'a', 'errors')).toBeNull();
  });
  test('a service band needs every entry operation to have enough data', () => {
    const bs = [baseline('a', 'GET /x', 'server'), baseline('a', 'GET /z', 'server', false)];
    expect(serviceBand(bs, 'a', 'rate')).toBeNull();
    expect(serviceBand([], 'a', 'rate')).toBeNull();
  });
  test('outsideBand counts the points above and below', () => {
    expect(outsideBand([10, 50, null, 20, 41], band(30, 15, 40))).toEqual({ above: 2, below: 1 });
    expect(outsideBand([10], null)).toEqual({ above: 0, below: 0 });
  });
});

describe('chartGeometry', () => {
  const t0 = Date.parse('2026-03-02T10:00:00Z');
  const times = [0, 1, 2, 3].map((i) => t0 + i * 60_000);
  test('points sit in the middle of their step and the band stays in the scale', () => {
    const g = chartGeometry({ times, step: 60_000, lines: [[10, null, 20, 30]], band: band(40, 35, 55), width: 400, height: 100, pad: { left: 0, right: 0, top: 0, bottom: 0 }, tzOffsetMin: 0 });
    expect(g.xs).toEqual([50, 150, 250, 350]);
    expect(g.yMax).toBe(60);
    expect(g.yTicks).toEqual([0, 20, 40, 60]);
    expect(g.band).not.toBeNull();
    expect(g.band!.y0).toBeCloseTo(100 - (55 / g.yMax) * 100);
    expect(g.band!.y1).toBeCloseTo(100 - (35 / g.yMax) * 100);
    expect(g.band!.y0).toBeLessThan(g.band!.yExpected);
    expect(g.band!.yExpected).toBeLessThan(g.band!.y1);
    // The gap at the second point breaks the line; the first point is alone.
    expect(g.paths[0]).toBe('M48.5,83.3h3M250,66.7L350,50');
  });
  test('an all-zero series sits at the bottom of a scale up to the floor', () => {
    const g = chartGeometry({ times, step: 60_000, lines: [[0, 0, 0, 0]], width: 100, height: 50, floor: 0.01, pad: { left: 0, right: 0, top: 0, bottom: 0 }, tzOffsetMin: 0 });
    expect(g.yMax).toBeCloseTo(0.01);
    expect(g.paths[0]).toBe('M12.5,50L37.5,50L62.5,50L87.5,50');
  });
  test('values past the top are clipped to the plot', () => {
    const g = chartGeometry({ times: times.slice(0, 1), step: 60_000, lines: [[5]], width: 10, height: 10, pad: { left: 0, right: 0, top: 0, bottom: 0 }, tzOffsetMin: 0 });
    expect(g.y(1e9)).toBe(0);
    expect(g.y(-5)).toBe(10);
  });
});

test('linePath with gaps and dashes', () => {
  expect(linePath([0, 10, 20], [null, null, null])).toBe('');
  expect(linePath([0, 10, 20], [1, 2, 3])).toBe('M0,1L10,2L20,3');
  expect(linePath([0, 10, 20, 30], [1, null, 3, 4])).toBe('M-1.5,1h3M20,3L30,4');
  expect(linePath([0, 10], [null, 5])).toBe('M8.5,5h3');
});

describe('timeTicks', () => {
  const at = (s: string) => Date.parse(s);
  test('an hour gets ticks on round minutes', () => {
    expect(timeTicks(at('2026-03-02T10:03:00Z'), at('2026-03-02T11:03:00Z'), 6, 0).map((t) => t.label)).toEqual(['10:10', '10:20', '10:30', '10:40', '10:50', '11:00']);
    expect(timeTicks(at('2026-03-02T10:03:00Z'), at('2026-03-02T11:03:00Z'), 4, 0).map((t) => t.label)).toEqual(['10:15', '10:30', '10:45', '11:00']);
  });
  test('ticks are in local time', () => {
    // UTC+2: the offset is -120 minutes.
    const ticks = timeTicks(at('2026-03-02T10:00:00Z'), at('2026-03-02T11:00:00Z'), 3, -120);
    expect(ticks.map((t) => t.label)).toEqual(['12:00', '12:30', '13:00']);
    expect(ticks[0].t).toBe(at('2026-03-02T10:00:00Z'));
  });
  test('a week gets dates', () => {
    const ticks = timeTicks(at('2026-03-01T00:00:00Z'), at('2026-03-08T00:00:00Z'), 4, 0);
    expect(ticks.map((t) => t.label)).toEqual(['03-02', '03-04', '03-06', '03-08']);
  });
  test('an empty range has no ticks', () => {
    expect(timeTicks(5, 5, 4, 0)).toEqual([]);
  });
});

test('nearestIndex', () => {
  const xs = [10, 20, 30];
  expect(nearestIndex(xs, 0)).toBe(0);
  expect(nearestIndex(xs, 14)).toBe(0);
  expect(nearestIndex(xs, 16)).toBe(1);
  expect(nearestIndex(xs, 100)).toBe(2);
  expect(nearestIndex([], 5)).toBe(-1);
});

test('seriesRate: calls over the range', () => {
  expect(seriesRate({ calls: 36, ratePerSecond: 0 }, { start: '2026-03-02T10:00:00Z', end: '2026-03-02T11:00:00Z' })).toBeCloseTo(0.01);
  expect(seriesRate({ calls: 36, ratePerSecond: 0.5 }, { start: 'x', end: 'y' })).toBe(0.5);
});
