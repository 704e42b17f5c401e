// The flame graph: spans as boxes on the time axis, one row per depth,
// children under their parent, drawn on a canvas (10,000 spans cost one
// redraw, not 10,000 elements). Click a box to select it, double-click to
// zoom to it. Keyboard: arrows move to the parent, first child and
// siblings; Enter shows details; z zooms to the selection, 0 resets.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useSize } from '../hooks';
import { serviceColor } from '../lib/colors';
import { formatDuration, niceTicks } from '../lib/format';
import type { TraceModel } from '../lib/model';
import { isError } from '../lib/otlp';

const RH = 20;
const AXIS = 22;

export interface FlameProps {
  model: TraceModel;
  selected: number;
  matches: ReadonlySet<number>;
  showCritical: boolean;
  onSelect: (i: number) => void;
  onOpen: (i: number) => void;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function Flame({ model, selected, matches, showCritical, onSelect, onOpen }: FlameProps) {
  const { trace, tree, cp } = model;
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const { width, height } = useSize(wrap);
  const [scrollTop, setScrollTop] = useState(0);
  const [zoom, setZoom] = useState<[number, number]>([0, trace.duration || 1]);
  const [hover, setHover] = useState<{ i: number; x: number; y: number } | null>(null);

  // Spans per depth, in start order.
  const levels = useMemo(() => {
    const lv: number[][] = Array.from({ length: tree.maxDepth + 1 }, () => []);
    for (const i of tree.preorder) lv[tree.depth[i]].push(i);
    for (const l of lv) l.sort((a, b) => trace.spans[a].start - trace.spans[b].start);
    return lv;
  }, [model]);

  const totalH = levels.length * RH;
  const viewH = Math.max(0, height - AXIS);
  const [t0, t1] = zoom;
  const scale = (width || 1) / (t1 - t0);

  useEffect(() => {
    const c = canvas.current;
    if (!c || !width) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.floor(width * dpr);
    c.height = Math.floor(viewH * dpr);
    c.style.width = `${width}px`;
    c.style.height = `${viewH}px`;
    const g = c.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, viewH);
    g.font = '12px system-ui, sans-serif';
    g.textBaseline = 'middle';
    const textColor = '#111';
    const cpColor = cssVar('--critical', '#e11d48');
    const selColor = cssVar('--fg', '#000');
    const dimming = matches.size > 0;
    const firstL = Math.floor(scrollTop / RH);
    const lastL = Math.min(levels.length, Math.ceil((scrollTop + viewH) / RH));
    for (let d = firstL; d < lastL; d++) {
      const y = d * RH - scrollTop;
      let lastPx = -1;
      for (const i of levels[d]) {
        const s = trace.spans[i];
        if (s.end < t0 || s.start > t1) continue;
        const x = (s.start - t0) * scale;
        const w = Math.max(1, s.duration * scale);
        if (w < 2 && Math.floor(x) === lastPx) continue; // sub-pixel spans share a pixel
        lastPx = Math.floor(x);
        g.globalAlpha = dimming && !matches.has(i) ? 0.25 : 1;
        g.fillStyle = serviceColor(s.service);
        g.fillRect(x, y + 1, w - (w > 3 ? 1 : 0), RH - 2);
        if (isError(s)) {
          g.fillStyle = '#dc2626';
          g.fillRect(x, y + 1, Math.min(w, 4), RH - 2);
        }
        if (showCritical && cp.onPath[i]) {
          g.fillStyle = cpColor;
          for (const seg of cp.segmentsBySpan.get(i) ?? []) g.fillRect((seg.start - t0) * scale, y + RH - 4, Math.max(1, (seg.end - seg.start) * scale), 3);
        }
        if (w > 36) {
          g.fillStyle = textColor;
          const label = `${s.name} (${formatDuration(s.duration)})`;
          const max = w - 8;
          let text = label;
          if (g.measureText(text).width > max) {
            let lo = 0;
            let hi = label.length;
            while (lo < hi) {
              const mid = (lo + hi + 1) >> 1;
              if (g.measureText(label.slice(0, mid) + '…').width <= max) lo = mid;
              else hi = mid - 1;
            }
            text = lo > 0 ? label.slice(0, lo) + '…' : '';
          }
          if (text) g.fillText(text, Math.max(x, 0) + 4, y + RH / 2);
        }
        if (i === selected) {
          g.globalAlpha = 1;
          g.strokeStyle = selColor;
          g.lineWidth = 2;
          g.strokeRect(x + 1, y + 2, Math.max(w - 2, 1), RH - 4);
        }
      }
    }
    g.globalAlpha = 1;
  }, [width, viewH, scrollTop, zoom, selected, matches, showCritical, levels]);

  // Keep the selection in view (vertically and within the zoom).
  useEffect(() => {
    if (selected < 0 || !wrap.current) return;
    const d = tree.depth[selected];
    const scroller = wrap.current.querySelector('.flame-scroll') as HTMLDivElement | null;
    if (scroller) {
      if (d * RH < scroller.scrollTop) scroller.scrollTop = d * RH;
      else if ((d + 1) * RH > scroller.scrollTop + viewH) scroller.scrollTop = (d + 1) * RH - viewH;
    }
    const s = trace.spans[selected];
    if (s.end < t0 || s.start > t1) setZoom([0, trace.duration || 1]);
  }, [selected]);

  const hit = (clientX: number, clientY: number): number => {
    const r = canvas.current!.getBoundingClientRect();
    const x = clientX - r.left;
    const y = clientY - r.top + scrollTop;
    const d = Math.floor(y / RH);
    if (d < 0 || d >= levels.length) return -1;
    const t = t0 + x / scale;
    const slack = 2 / scale;
    const l = levels[d];
    let lo = 0;
    let hi = l.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (trace.spans[l[mid]].start <= t + slack) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (let k = found; k >= 0 && k > found - 50; k--) {
      const s = trace.spans[l[k]];
      if (s.start <= t + slack && s.end >= t - slack) return l[k];
    }
    return -1;
  };

  const zoomTo = (i: number) => {
    const s = trace.spans[i];
    const pad = Math.max(s.duration * 0.05, 1);
    setZoom([Math.max(0, s.start - pad), Math.min(trace.duration || 1, s.end + pad)]);
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const cur = selected >= 0 ? selected : tree.roots[0] ?? -1;
    if (cur < 0) return;
    const d = tree.depth[cur];
    const row = levels[d];
    const k = row.indexOf(cur);
    const move = (i: number | undefined) => {
      e.preventDefault();
      if (i !== undefined && i >= 0) onSelect(i);
    };
    switch (e.key) {
      case 'ArrowUp':
        return move(tree.parent[cur] >= 0 ? tree.parent[cur] : cur);
      case 'ArrowDown':
        return move(tree.children[cur][0] ?? cur);
      case 'ArrowLeft':
        return move(row[k - 1] ?? cur);
      case 'ArrowRight':
        return move(row[k + 1] ?? cur);
      case 'Enter':
        e.preventDefault();
        return onOpen(cur);
      case 'z':
        e.preventDefault();
        return zoomTo(cur);
      case '0':
        e.preventDefault();
        return setZoom([0, trace.duration || 1]);
    }
  };

  const onWheel = (e: WheelEvent) => {
    if (!e.ctrlKey && !e.metaKey) return;
    e.preventDefault();
    const r = canvas.current!.getBoundingClientRect();
    const at = t0 + (e.clientX - r.left) / scale;
    const f = e.deltaY > 0 ? 1.25 : 0.8;
    const a = Math.max(0, at - (at - t0) * f);
    const b = Math.min(trace.duration || 1, at + (t1 - at) * f);
    if (b - a > 10) setZoom([a, b]);
  };

  const zoomed = t0 > 0 || t1 < (trace.duration || 1);
  return (
    <div class="flame" ref={wrap} data-testid="flame">
      <div class="flame-axis" aria-hidden="true">
        {niceTicks(t1 - t0, 6).map((t) => (
          <span class="tick" style={{ left: `${(t / (t1 - t0)) * 100}%` }}>
            {formatDuration(t0 + t)}
          </span>
        ))}
        {zoomed && (
          <button type="button" class="reset-zoom" onClick={() => setZoom([0, trace.duration || 1])}>
            Reset zoom
          </button>
        )}
      </div>
      <div class="flame-scroll" style={{ height: `${viewH}px` }} onScroll={(e) => setScrollTop((e.target as HTMLDivElement).scrollTop)}>
        <div style={{ height: `${totalH}px`, position: 'relative' }}>
          <canvas
            ref={canvas}
            class="flame-canvas"
            style={{ top: `${scrollTop}px` }}
            tabIndex={0}
            role="img"
            aria-label={`Flame graph of ${trace.spans.length} spans. Arrow keys move between spans, Enter shows details, z zooms to the selected span, 0 resets the zoom.`}
            onKeyDown={onKeyDown}
            onClick={(e) => {
              const i = hit(e.clientX, e.clientY);
              if (i >= 0) onSelect(i);
            }}
            onDblClick={(e) => {
              const i = hit(e.clientX, e.clientY);
              if (i >= 0) zoomTo(i);
            }}
            onMouseMove={(e) => {
              const i = hit(e.clientX, e.clientY);
              setHover(i >= 0 ? { i, x: e.offsetX, y: e.offsetY } : null);
            }}
            onMouseLeave={() => setHover(null)}
            onWheel={onWheel}
          />
          {hover && (
            <div class="flame-tip" style={{ left: `${Math.min(hover.x + 12, width - 260)}px`, top: `${hover.y + scrollTop + 14}px` }}>
              <strong>{trace.spans[hover.i].name}</strong>
              <div>
                {trace.spans[hover.i].service} · {formatDuration(trace.spans[hover.i].duration)}
                {cp.onPath[hover.i] ? ' · critical path' : ''}
              </div>
            </div>
          )}
        </div>
      </div>
    </div>
  );
}
