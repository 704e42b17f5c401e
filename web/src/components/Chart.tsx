// Time-series charts drawn as SVG by hand: a line per series, the
// baseline band behind them (shaded, its expected value dashed), time and
// value axes, and a cursor that follows the pointer or the arrow keys and
// reads the values out above the chart. Sparkline is the same without
// axes, for table cells. The arithmetic is lib/series.ts.

import { useMemo, useRef, useState } from 'preact/hooks';
import type { Band } from '../apitypes';
import { useSize } from '../hooks';
import { formatMs, formatShare } from '../lib/analysis';
import { formatRate, formatTime } from '../lib/format';
import { chartGeometry, nearestIndex, outsideBand, type Metric } from '../lib/series';

export interface ChartLine {
  values: (number | null)[];
  label: string;
  /** CSS class of the line: l0 (the main series), l1, l2 */
  cls?: string;
}

export function formatMetric(m: Metric, v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  if (m === 'rate') return formatRate(v);
  if (m === 'errors') return formatShare(v);
  return formatMs(v);
}

export function bandText(m: Metric, b: Band): string {
  return `${formatMetric(m, b.low)}–${formatMetric(m, b.high)} (expected ${formatMetric(m, b.expected)})`;
}

const PAD = { left: 52, right: 12, top: 8, bottom: 22 };

export interface TimeChartProps {
  title: string;
  metric: Metric;
  times: number[];
  step: number;
  lines: ChartLine[];
  band?: Band | null;
  /** what the band is, for the legend: "baseline of GET /cart" */
  bandLabel?: string;
  height?: number;
  floor?: number;
  testid?: string;
}

export function TimeChart(p: TimeChartProps) {
  const wrap = useRef<HTMLDivElement>(null);
  const { width } = useSize(wrap);
  const [cursor, setCursor] = useState(-1);
  const height = p.height ?? 140;
  const w = Math.max(160, width);
  const g = useMemo(() => chartGeometry({ times: p.times, step: p.step, lines: p.lines.map((l) => l.values), band: p.band, width: w, height, pad: PAD, floor: p.floor }), [p.times, p.step, p.lines, p.band, w, height, p.floor]);
  const n = p.times.length;
  const main = p.lines[0]?.values ?? [];
  let last = -1;
  for (let i = main.length - 1; i >= 0; i--)
    if (main[i] !== null) {
      last = i;
      break;
    }
  const at = cursor >= 0 && cursor < n ? cursor : last;
  const out = outsideBand(main, p.band ?? null);
  const summary = `${p.title}: ${n} points${last >= 0 ? `, latest ${formatMetric(p.metric, main[last])}` : ', no data'}${p.band ? `; baseline ${bandText(p.metric, p.band)}, ${out.above} points above it, ${out.below} below` : '; no baseline'}`;
  const move = (i: number) => setCursor(Math.max(0, Math.min(n - 1, i)));
  const onKey = (e: KeyboardEvent) => {
    const k = e.key;
    if (k === 'ArrowLeft') move((cursor < 0 ? last : cursor) - 1);
    else if (k === 'ArrowRight') move((cursor < 0 ? last : cursor) + 1);
    else if (k === 'Home') move(0);
    else if (k === 'End') move(n - 1);
    else if (k === 'Escape') setCursor(-1);
    else return;
    e.preventDefault();
  };
  const onPointer = (e: MouseEvent) => {
    const r = (e.currentTarget as SVGElement).getBoundingClientRect();
    setCursor(nearestIndex(g.xs, e.clientX - r.left));
  };
  return (
    <figure class="chart" data-testid={p.testid} data-metric={p.metric}>
      <figcaption class="chart-head">
        <span class="chart-title">{p.title}</span>
        <span class="chart-readout" aria-live="polite" data-testid="chart-readout">
          {at >= 0 ? (
            <>
              <span class="muted">{cursor >= 0 ? formatTime(p.times[at]).slice(5, 16) : 'latest'}</span>{' '}
              {p.lines.map((l) => (
                <span class={`val ${l.cls ?? 'l0'}`}>
                  {p.lines.length > 1 ? `${l.label} ` : ''}
                  <strong>{formatMetric(p.metric, l.values[at])}</strong>
                </span>
              ))}
            </>
          ) : (
            <span class="muted">no calls in this range</span>
          )}
        </span>
        {p.band ? (
          <span class="chart-band-legend" title={p.bandLabel}>
            <span class="swatch" aria-hidden="true" /> baseline {bandText(p.metric, p.band)}
          </span>
        ) : (
          <span class="chart-band-legend muted">no baseline</span>
        )}
      </figcaption>
      <div class="chart-box" ref={wrap}>
        <svg width={w} height={height} tabIndex={0} role="img" aria-label={`${summary}. Arrow keys move the cursor.`} onKeyDown={onKey} onMouseMove={onPointer} onMouseLeave={() => setCursor(-1)} onBlur={() => setCursor(-1)}>
          {g.yTicks.map((v) => (
            <g class="y-tick">
              <line x1={g.plot.left} x2={g.plot.right} y1={g.y(v)} y2={g.y(v)} />
              <text x={g.plot.left - 6} y={g.y(v) + 4} text-anchor="end">
                {formatMetric(p.metric, v)}
              </text>
            </g>
          ))}
          {g.band && (
            <g class="chart-band" data-testid="baseline-band">
              <rect x={g.plot.left} width={g.plot.right - g.plot.left} y={g.band.y0} height={Math.max(1, g.band.y1 - g.band.y0)} />
              <line class="expected" x1={g.plot.left} x2={g.plot.right} y1={g.band.yExpected} y2={g.band.yExpected} />
            </g>
          )}
          {g.xTicks.map((t) => (
            <text class="x-tick" x={t.x} y={height - 6} text-anchor="middle">
              {t.label}
            </text>
          ))}
          {g.paths.map((d, i) => (
            <path class={`series ${p.lines[i].cls ?? 'l0'}`} d={d} />
          ))}
          {p.band && <AboveDots xs={g.xs} values={main} band={p.band} y={g.y} r={3} />}
          {at >= 0 && cursor >= 0 && (
            <g class="cursor">
              <line x1={g.xs[at]} x2={g.xs[at]} y1={g.plot.top} y2={g.plot.bottom} />
              {p.lines.map((l) => (l.values[at] !== null ? <circle class={l.cls ?? 'l0'} cx={g.xs[at]} cy={g.y(l.values[at]!)} r={3.5} /> : null))}
            </g>
          )}
        </svg>
      </div>
    </figure>
  );
}

/** Sparkline is a small chart for a table cell: one line and the band behind it. */
export function Sparkline({ metric, times, step, values, band, width = 120, height = 28, label, floor }: { metric: Metric; times: number[]; step: number; values: (number | null)[]; band?: Band | null; width?: number; height?: number; label: string; floor?: number }) {
  const g = useMemo(() => chartGeometry({ times, step, lines: [values], band, width, height, pad: { left: 1, right: 1, top: 2, bottom: 2 }, floor, maxXTicks: 1 }), [times, step, values, band, width, height, floor]);
  const out = outsideBand(values, band ?? null);
  const aria = `${label}${band ? `; baseline ${bandText(metric, band)}${out.above ? `, ${out.above} points above it` : ''}` : ''}`;
  return (
    <svg class="spark" width={width} height={height} role="img" aria-label={aria} data-metric={metric}>
      <title>{aria}</title>
      {g.band && (
        <g class="chart-band" data-testid="baseline-band">
          <rect x={0} width={width} y={g.band.y0} height={Math.max(1, g.band.y1 - g.band.y0)} />
          <line class="expected" x1={0} x2={width} y1={g.band.yExpected} y2={g.band.yExpected} />
        </g>
      )}
      <path class="series l0" d={g.paths[0]} />
      {band && <AboveDots xs={g.xs} values={values} band={band} y={g.y} r={2} />}
    </svg>
  );
}

/** AboveDots marks the points above the band's high in red. */
function AboveDots({ xs, values, band, y, r }: { xs: number[]; values: (number | null)[]; band: Band; y: (v: number) => number; r: number }) {
  return (
    <g class="above-band">
      {values.map((v, i) => (v !== null && v > band.high ? <circle cx={xs[i]} cy={y(v)} r={r} /> : null))}
    </g>
  );
}
