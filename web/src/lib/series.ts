// The arithmetic of the RED charts: a metric's values from the points of
// GET /api/v1/red (gaps where a step had no calls: no latency, no error
// rate), the baseline band of GET /api/v1/baselines that applies to a
// series, and the geometry of a chart: scales that keep the band in view,
// line paths broken at gaps, time ticks, and the point under the cursor.

import type { Band, Baseline, REDPoint } from '../apitypes';
import { niceTicks, parseDurationNs } from './format';

export type Metric = 'rate' | 'errors' | 'p50' | 'p90' | 'p99';

export const latencyMetrics: Metric[] = ['p50', 'p90', 'p99'];

/**
 * pointValue is a point's value of metric, or null where it has none (a
 * step without calls has no latency and no error rate). With the step
 * (ms), the rate is computed from the calls: the answer rounds
 * ratePerSecond to three decimals, which is zero for a few calls an hour.
 */
export function pointValue(p: REDPoint, m: Metric, step?: number): number | null {
  if (m === 'rate') return step && step > 0 && Number.isFinite(p.calls) ? p.calls / (step / 1000) : finite(p.ratePerSecond) ?? 0;
  if (!p.calls) return null;
  if (m === 'errors') return finite(p.errorRate) ?? 0;
  return finite(p[`${m}Ms`]);
}

function finite(v: number | undefined | null): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** seriesRate is a series' request rate over the answer's range, per second (from its calls, see pointValue). */
export function seriesRate(s: { calls: number; ratePerSecond: number }, range: { start: string; end: string }): number {
  const secs = (Date.parse(range.end) - Date.parse(range.start)) / 1000;
  return secs > 0 && Number.isFinite(s.calls) ? s.calls / secs : s.ratePerSecond ?? 0;
}

/** stepMs reads the step of an answer ("1m0s") in milliseconds, or infers it from the points. */
export function stepMs(step: string | undefined, points: { t: string }[]): number {
  const ns = step ? parseDurationNs(step) : undefined;
  if (ns && ns > 0) return ns / 1e6;
  if (points.length >= 2) return Date.parse(points[1].t) - Date.parse(points[0].t) || 60_000;
  return 60_000;
}

/** bandOf is the band of metric in a baseline, or null when the baseline has too little data (the detector does not test such an operation). */
export function bandOf(b: Baseline | undefined, m: Metric): Band | null {
  if (!b || !b.sufficient) return null;
  const band = m === 'rate' ? b.ratePerSecond : m === 'errors' ? b.errorRate : b[`${m}Ms`];
  if (!band || ![band.expected, band.low, band.high].every((v) => Number.isFinite(v))) return null;
  return { expected: band.expected, low: Math.min(band.low, band.expected), high: Math.max(band.high, band.expected) };
}

/** findBaseline is the baseline of one operation (service, span name and kind). */
export function findBaseline(baselines: readonly Baseline[], service: string, operation: string, kind: string): Baseline | undefined {
  return baselines.find((b) => b.service === service && b.operation === operation && b.kind === kind);
}

const isEntry = (k: string) => k === 'server' || k === 'consumer';

/**
 * serviceBand is the band of a whole service (its server and consumer
 * operations, the requests it serves, as `by=service` counts them). The
 * rate band is the sum of its operations' bands; latency and error-rate
 * bands do not add up across operations, so a service has them only when
 * it has one entry operation. Null when an entry operation's baseline is
 * missing or has too little data.
 */
export function serviceBand(baselines: readonly Baseline[], service: string, m: Metric): Band | null {
  const entry = baselines.filter((b) => b.service === service && isEntry(b.kind));
  if (entry.length === 0 || entry.some((b) => !b.sufficient)) return null;
  if (m === 'rate') {
    const sum: Band = { expected: 0, low: 0, high: 0 };
    for (const b of entry) {
      const band = bandOf(b, 'rate');
      if (!band) return null;
      sum.expected += band.expected;
      sum.low += band.low;
      sum.high += band.high;
    }
    return sum;
  }
  return entry.length === 1 ? bandOf(entry[0], m) : null;
}

/** floorOf is the smallest top of a metric's scale, so a flat zero line sits at the bottom rather than the middle. */
export function floorOf(m: Metric): number {
  return m === 'errors' ? 0.01 : m === 'rate' ? 0.01 : 1;
}

export interface ChartInput {
  /** bucket start times, ms since the epoch, ascending */
  times: number[];
  step: number;
  lines: (number | null)[][];
  band?: Band | null;
  width: number;
  height: number;
  pad?: { left: number; right: number; top: number; bottom: number };
  /** the scale's top is at least this */
  floor?: number;
  /** local time's offset from UTC, minutes (Date#getTimezoneOffset); for the time ticks */
  tzOffsetMin?: number;
  maxXTicks?: number;
}

export interface ChartGeometry {
  /** x of each point (the middle of its step) */
  xs: number[];
  x: (t: number) => number;
  y: (v: number) => number;
  yMax: number;
  yTicks: number[];
  xTicks: { t: number; x: number; label: string }[];
  paths: string[];
  /** the band's rectangle (clipped to the plot) and its expected value's y */
  band: { y0: number; y1: number; yExpected: number } | null;
  plot: { left: number; right: number; top: number; bottom: number };
}

/** chartGeometry lays out a time chart: points in the middle of their step, a y scale from 0 holding every value and the band. */
export function chartGeometry(c: ChartInput): ChartGeometry {
  const pad = c.pad ?? { left: 0, right: 0, top: 2, bottom: 2 };
  const plot = { left: pad.left, right: Math.max(pad.left + 1, c.width - pad.right), top: pad.top, bottom: Math.max(pad.top + 1, c.height - pad.bottom) };
  const t0 = c.times.length ? c.times[0] : 0;
  const t1 = c.times.length ? c.times[c.times.length - 1] + c.step : t0 + c.step;
  const x = (t: number) => plot.left + ((t - t0) / Math.max(1, t1 - t0)) * (plot.right - plot.left);
  let max = c.floor ?? 0;
  for (const line of c.lines) for (const v of line) if (v !== null && v > max) max = v;
  if (c.band && c.band.high > max) max = c.band.high;
  const yTicks = niceTicks(max > 0 ? max : 1, 3);
  // The top tick at or above the largest value.
  if (yTicks.length > 1 && yTicks[yTicks.length - 1] < max * (1 - 1e-9)) yTicks.push(yTicks[yTicks.length - 1] + (yTicks[1] - yTicks[0]));
  const yMax = yTicks[yTicks.length - 1] || 1;
  const y = (v: number) => plot.bottom - (Math.max(0, Math.min(v, yMax)) / yMax) * (plot.bottom - plot.top);
  const xs = c.times.map((t) => x(t + c.step / 2));
  const paths = c.lines.map((line) => linePath(xs, line.map((v) => (v === null ? null : y(v)))));
  const band = c.band ? { y0: y(c.band.high), y1: y(c.band.low), yExpected: y(c.band.expected) } : null;
  const xTicks = timeTicks(t0, t1, c.maxXTicks ?? Math.max(2, Math.floor((plot.right - plot.left) / 90)), c.tzOffsetMin ?? new Date(t0).getTimezoneOffset()).map((tk) => ({ ...tk, x: x(tk.t) }));
  return { xs, x, y, yMax, yTicks, xTicks, paths, band, plot };
}

const r1 = (v: number) => Math.round(v * 10) / 10;

/**
 * linePath draws the points as an SVG path, broken where a value is null;
 * a point alone between gaps becomes a short dash so it stays visible.
 */
export function linePath(xs: number[], ys: (number | null)[]): string {
  let d = '';
  let run = 0;
  for (let i = 0; i < xs.length; i++) {
    const v = ys[i];
    if (v === null || v === undefined) {
      run = 0;
      continue;
    }
    const alone = run === 0 && (i + 1 >= xs.length || ys[i + 1] === null || ys[i + 1] === undefined);
    if (alone) d += `M${r1(xs[i] - 1.5)},${r1(v)}h3`;
    else d += `${run === 0 ? 'M' : 'L'}${r1(xs[i])},${r1(v)}`;
    run++;
  }
  return d;
}

const MIN = 60_000;
const tickSteps = [MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, 60 * MIN, 120 * MIN, 180 * MIN, 360 * MIN, 720 * MIN, 1440 * MIN, 2 * 1440 * MIN, 7 * 1440 * MIN];

/** timeTicks are round local times in [t0, t1]: at most max of them, on multiples of a minute, hour or day. */
export function timeTicks(t0: number, t1: number, max: number, tzOffsetMin: number): { t: number; label: string }[] {
  if (!(t1 > t0) || max < 1) return [];
  const step = tickSteps.find((s) => (t1 - t0) / s <= max) ?? tickSteps[tickSteps.length - 1];
  const off = -tzOffsetMin * MIN; // local = utc + off
  const out: { t: number; label: string }[] = [];
  for (let local = Math.ceil((t0 + off) / step) * step; local - off <= t1; local += step) {
    const d = new Date(local); // read as UTC fields: local wall time
    const pad = (n: number) => String(n).padStart(2, '0');
    const label = step >= 1440 * MIN || (d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && t1 - t0 > 1440 * MIN) ? `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` : `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    out.push({ t: local - off, label });
  }
  return out;
}

/** nearestIndex is the index of the x closest to px (xs ascending), or -1 without points. */
export function nearestIndex(xs: number[], px: number): number {
  if (xs.length === 0) return -1;
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < px) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && px - xs[lo - 1] <= xs[lo] - px ? lo - 1 : lo;
}

/** outsideBand counts the values above the band's high and below its low. */
export function outsideBand(values: (number | null)[], band: Band | null): { above: number; below: number } {
  let above = 0;
  let below = 0;
  if (band) for (const v of values) if (v !== null) v > band.high ? above++ : v < band.low ? below++ : 0;
  return { above, below };
}
