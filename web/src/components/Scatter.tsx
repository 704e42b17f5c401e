// Duration over time of the search results: one point per trace, red
// when it has errors. A point is a link: click it, or focus it and press
// Enter, to open the trace.

import { useRef } from 'preact/hooks';
import type { TraceSummary } from '../api';
import { useSize } from '../hooks';
import { formatDuration, formatTime } from '../lib/format';
import { splitNanos } from '../lib/otlp';
import { href, navigate } from '../router';

const H = 200;
const M = { l: 64, r: 16, t: 12, b: 28 };

function ticksLinear(lo: number, hi: number, n: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const pow = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

function timeTicks(lo: number, hi: number, n: number): number[] {
  const span = hi - lo;
  const steps = [1e3, 5e3, 10e3, 30e3, 60e3, 300e3, 600e3, 1800e3, 3600e3, 6 * 3600e3, 86400e3];
  const step = steps.find((s) => span / s <= n) ?? 86400e3;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

function clock(ms: number, withSeconds: boolean): string {
  const d = new Date(ms);
  const p = (x: number) => String(x).padStart(2, '0');
  return withSeconds ? `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` : `${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function Scatter({ traces }: { traces: TraceSummary[] }) {
  const ref = useRef<HTMLDivElement>(null);
  const { width } = useSize(ref);
  const pts = traces.map((t) => {
    const [s, ns] = splitNanos(t.startTimeUnixNano);
    return { t, x: s * 1e3 + ns / 1e6, y: Number(t.durationNanos) };
  });
  const W = Math.max(width, 320);
  const iw = W - M.l - M.r;
  const ih = H - M.t - M.b;
  let x0 = Math.min(...pts.map((p) => p.x));
  let x1 = Math.max(...pts.map((p) => p.x));
  if (!(x1 > x0)) {
    x0 -= 30e3;
    x1 += 30e3;
  }
  const pad = (x1 - x0) * 0.03;
  x0 -= pad;
  x1 += pad;
  const ys = pts.map((p) => Math.max(p.y, 1));
  const yMin = Math.min(...ys);
  const yMax = Math.max(...ys);
  const log = yMax / yMin > 50;
  const fy = log
    ? (v: number) => {
        const a = Math.log10(yMin) - 0.1;
        const b = Math.log10(yMax) + 0.1;
        return ih - ((Math.log10(Math.max(v, 1)) - a) / (b - a)) * ih;
      }
    : (v: number) => ih - (v / (yMax * 1.1)) * ih;
  const fx = (v: number) => ((v - x0) / (x1 - x0)) * iw;
  const yt = log
    ? Array.from({ length: 12 }, (_, i) => Math.pow(10, i)).filter((v) => v >= yMin / 10 && v <= yMax * 10 && fy(v) >= 0 && fy(v) <= ih)
    : ticksLinear(0, yMax * 1.1, 4);
  const xt = timeTicks(x0, x1, Math.max(2, Math.floor(iw / 90)));
  const withSeconds = x1 - x0 < 10 * 60e3;
  return (
    <div class="scatter" ref={ref} data-testid="scatter">
      <svg width={W} height={H} role="group" aria-label={`Duration over time of ${pts.length} traces${log ? ' (log scale)' : ''}`}>
        <g transform={`translate(${M.l},${M.t})`}>
          {yt.map((v) => (
            <g class="tick">
              <line x1={0} x2={iw} y1={fy(v)} y2={fy(v)} />
              <text x={-6} y={fy(v)} dy="0.32em" text-anchor="end">
                {formatDuration(v)}
              </text>
            </g>
          ))}
          {xt.map((v) => (
            <g class="tick">
              <text x={fx(v)} y={ih + 18} text-anchor="middle">
                {clock(v, withSeconds)}
              </text>
            </g>
          ))}
          <line class="axis" x1={0} x2={iw} y1={ih} y2={ih} />
          {pts.map((p) => {
            const url = href(`trace/${p.t.traceID}`);
            const label = `${p.t.rootServiceName}: ${p.t.rootName || '(no root)'}, ${formatDuration(p.y)}, ${formatTime(p.x)}${p.t.errorCount ? `, ${p.t.errorCount} errors` : ''}`;
            return (
              <circle
                class={`pt${p.t.errorCount ? ' err' : ''}`}
                cx={fx(p.x)}
                cy={fy(Math.max(p.y, 1))}
                r={5}
                tabIndex={0}
                role="link"
                aria-label={label}
                data-trace-id={p.t.traceID}
                onClick={() => navigate(url)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' || e.key === ' ') {
                    e.preventDefault();
                    navigate(url);
                  }
                }}
              >
                <title>{label}</title>
              </circle>
            );
          })}
        </g>
      </svg>
    </div>
  );
}
