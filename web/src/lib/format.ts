// Formatting of durations, times, counts and sizes for display.

/** formatDuration renders nanoseconds with three significant digits: 1.23 s, 45.6 ms, 789 µs, 12 ns. */
export function formatDuration(ns: number): string {
  if (!Number.isFinite(ns)) return '–';
  const neg = ns < 0;
  const v = Math.abs(ns);
  let out: string;
  if (v < 1e3) out = `${round3(v)} ns`;
  else if (v < 1e6) out = `${round3(v / 1e3)} µs`;
  else if (v < 1e9) out = `${round3(v / 1e6)} ms`;
  else if (v < 60e9) out = `${round3(v / 1e9)} s`;
  else if (v < 3600e9) {
    const m = Math.floor(v / 60e9);
    const s = Math.round((v - m * 60e9) / 1e9);
    out = s === 60 ? `${m + 1}m` : s ? `${m}m ${s}s` : `${m}m`;
  } else {
    const h = Math.floor(v / 3600e9);
    const m = Math.round((v - h * 3600e9) / 60e9);
    out = m ? `${h}h ${m}m` : `${h}h`;
  }
  return neg ? `-${out}` : out;
}

function round3(x: number): string {
  if (x >= 100) return String(Math.round(x));
  if (x >= 10) return trimZeros(x.toFixed(1));
  return trimZeros(x.toFixed(2));
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** formatTime renders a Unix time in milliseconds as local date and time with milliseconds. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return '–';
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** formatRelative renders how long ago a Unix time in milliseconds was. */
export function formatRelative(ms: number, now = Date.now()): string {
  const s = Math.round((now - ms) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatPercent(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return '–';
  return `${(x * 100).toFixed(digits)}%`;
}

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '–';
  if (perSecond >= 100) return `${Math.round(perSecond)}/s`;
  if (perSecond >= 1) return `${perSecond.toFixed(1)}/s`;
  if (perSecond * 60 >= 1) return `${(perSecond * 60).toFixed(1)}/min`;
  return `${(perSecond * 3600).toFixed(1)}/h`;
}

/**
 * niceTicks returns about count round tick values covering [0, max]
 * (1, 2 or 5 times a power of ten apart).
 */
export function niceTicks(max: number, count = 6): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const pow = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(v);
  return out;
}

/** parseDurationNs parses a Go/TraceQL duration ("250ms", "1.5s", "1h30m"), or undefined. */
export function parseDurationNs(s: string): number | undefined {
  const t = s.trim();
  if (!t) return undefined;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let pos = 0;
  re.lastIndex = 0;
  while (pos < t.length) {
    re.lastIndex = pos;
    const m = re.exec(t);
    if (!m) return undefined;
    total += parseFloat(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  return total;
}
