// The waterfall: one row per visible span, indented by depth, with its bar
// on the trace's time axis, the critical path drawn over the bars. Only
// the rows in view (and a few more) are in the DOM, so a trace of any size
// renders and scrolls at the cost of a screenful of rows.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useSize } from '../hooks';
import { serviceColor } from '../lib/colors';
import { formatDuration, niceTicks } from '../lib/format';
import type { TraceModel } from '../lib/model';
import { isError, kindName } from '../lib/otlp';

export const ROW_HEIGHT = 24;
/** rows rendered beyond the view on each side; the window moves in steps of STEP rows */
const OVERSCAN = 16;
const STEP = 8;
const MAX_INDENT_LEVELS = 40;

export interface WaterfallProps {
  model: TraceModel;
  rows: Int32Array;
  collapsed: ReadonlySet<number>;
  selected: number;
  matches: ReadonlySet<number>;
  /** spans of the "why slow" finding picked */
  highlight?: ReadonlySet<number>;
  showCritical: boolean;
  onSelect: (i: number) => void;
  onToggle: (i: number) => void;
  onOpen: (i: number) => void;
  onRendered?: () => void;
}

export function TimeAxis({ duration, className = '' }: { duration: number; className?: string }) {
  const ticks = niceTicks(duration, 6);
  return (
    <div class={`time-axis ${className}`} aria-hidden="true">
      {ticks.map((t) => (
        <span class="tick" style={{ left: `${duration > 0 ? (t / duration) * 100 : 0}%` }}>
          {formatDuration(t)}
        </span>
      ))}
    </div>
  );
}

export function Waterfall(p: WaterfallProps) {
  const { model, rows, selected } = p;
  const { trace, tree, cp } = model;
  const body = useRef<HTMLDivElement>(null);
  const { height } = useSize(body);
  // The first row of the rendered window, moved in steps: scrolling by a
  // few rows re-renders nothing.
  const [windowStart, setWindowStart] = useState(0);
  const toWindow = (top: number) => Math.max(0, Math.floor(top / ROW_HEIGHT / STEP) * STEP - OVERSCAN);
  const frame = useRef(0);
  const rendered = useRef(false);

  const posOf = useMemo(() => {
    const m = new Int32Array(trace.spans.length).fill(-1);
    rows.forEach((v, i) => (m[v] = i));
    return m;
  }, [rows, trace]);

  // Keep the selected row in view.
  useLayoutEffect(() => {
    const el = body.current;
    if (!el || selected < 0) return;
    const pos = posOf[selected];
    if (pos < 0) return;
    const top = pos * ROW_HEIGHT;
    const view = el.clientHeight || 600;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT > el.scrollTop + view) el.scrollTop = top + ROW_HEIGHT - view;
    setWindowStart(toWindow(el.scrollTop));
  }, [selected, posOf]);

  useEffect(() => {
    if (!rendered.current && rows.length > 0) {
      rendered.current = true;
      p.onRendered?.();
    }
  });

  const onScroll = () => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      if (body.current) setWindowStart(toWindow(body.current.scrollTop));
    });
  };

  const viewRows = Math.ceil((height || 800) / ROW_HEIGHT);
  const first = Math.min(windowStart, Math.max(0, rows.length - viewRows - OVERSCAN));
  const last = Math.min(rows.length, first + viewRows + 2 * OVERSCAN + STEP);
  const dur = trace.duration || 1;

  const onKeyDown = (e: KeyboardEvent) => {
    const pos = selected >= 0 ? posOf[selected] : -1;
    const go = (to: number) => {
      e.preventDefault();
      const c = Math.max(0, Math.min(rows.length - 1, to));
      if (rows.length) p.onSelect(rows[c]);
    };
    switch (e.key) {
      case 'ArrowDown':
        return go(pos + 1);
      case 'ArrowUp':
        return go(pos < 0 ? 0 : pos - 1);
      case 'PageDown':
        return go(pos + viewRows - 1);
      case 'PageUp':
        return go(pos - viewRows + 1);
      case 'Home':
        return go(0);
      case 'End':
        return go(rows.length - 1);
      case 'ArrowRight':
        if (selected < 0) return go(0);
        e.preventDefault();
        if (tree.children[selected].length === 0) return;
        if (p.collapsed.has(selected)) p.onToggle(selected);
        else p.onSelect(tree.children[selected][0]);
        return;
      case 'ArrowLeft':
        if (selected < 0) return;
        e.preventDefault();
        if (tree.children[selected].length > 0 && !p.collapsed.has(selected)) p.onToggle(selected);
        else if (tree.parent[selected] >= 0) p.onSelect(tree.parent[selected]);
        return;
      case 'Enter':
        if (selected >= 0) {
          e.preventDefault();
          p.onOpen(selected);
        }
        return;
      case ' ':
        if (selected >= 0 && tree.children[selected].length) {
          e.preventDefault();
          p.onToggle(selected);
        }
        return;
    }
  };

  const items = [];
  for (let k = first; k < last; k++) {
    const i = rows[k];
    const s = trace.spans[i];
    const depth = tree.depth[i];
    const kids = tree.children[i].length;
    const isCollapsed = p.collapsed.has(i);
    const onPath = p.showCritical && cp.onPath[i] === 1;
    const left = (s.start / dur) * 100;
    const width = (s.duration / dur) * 100;
    const segs = p.showCritical ? cp.segmentsBySpan.get(i) : undefined;
    const color = serviceColor(s.service);
    const err = isError(s);
    // The duration label goes right of the bar, else left of it, else inside.
    const labelAt = left + width < 75 ? 'right' : left > 25 ? 'left' : 'inside';
    items.push(
      <div
        key={i}
        id={`span-row-${i}`}
        class={`wf-row${i === selected ? ' selected' : ''}${p.matches.has(i) ? ' match' : ''}${p.highlight?.has(i) ? ' highlight' : ''}${onPath ? ' on-path' : ''}${err ? ' error' : ''}`}
        style={{ transform: `translateY(${k * ROW_HEIGHT}px)` }}
        role="treeitem"
        aria-level={depth + 1}
        aria-expanded={kids ? !isCollapsed : undefined}
        aria-selected={i === selected}
        data-span-id={s.spanId}
        onClick={() => p.onSelect(i)}
        onDblClick={() => p.onOpen(i)}
      >
        <div class="wf-name" style={{ '--depth': Math.min(depth, MAX_INDENT_LEVELS) }} title={`${s.service}: ${s.name}`}>
          <span class="indent" />
          {kids > 0 ? (
            <button
              type="button"
              class="toggle"
              tabIndex={-1}
              aria-label={`${isCollapsed ? 'Expand' : 'Collapse'} ${kids} children`}
              onClick={(e) => {
                e.stopPropagation();
                p.onToggle(i);
              }}
            >
              {isCollapsed ? '▸' : '▾'}
              {isCollapsed && <span class="kids">{tree.subtreeSize[i] - 1}</span>}
            </button>
          ) : (
            <span class="toggle leaf" />
          )}
          <span class="svc-bar" style={{ background: color }} />
          {depth > MAX_INDENT_LEVELS && <span class="deep">{depth}</span>}
          {err && (
            <span class="err-icon" title="error" aria-label="error">
              !
            </span>
          )}
          <span class="svc">{s.service}</span>
          <span class="op">{s.name}</span>
        </div>
        <div class="wf-timeline">
          <div class="bar" style={{ left: `${left}%`, width: `max(${width}%, 1px)`, background: color }} />
          {segs?.map((g) => (
            <div class="cp-seg" style={{ left: `${(g.start / dur) * 100}%`, width: `max(${((g.end - g.start) / dur) * 100}%, 1px)` }} />
          ))}
          {s.events.length > 0 &&
            s.events.slice(0, 20).map((ev) => <div class={`event-tick${ev.name === 'exception' ? ' exception' : ''}`} style={{ left: `${(ev.time / dur) * 100}%` }} title={ev.name} />)}
          <span
            class={`bar-label ${labelAt}`}
            style={labelAt === 'right' ? { left: `calc(${left + width}% + 4px)` } : labelAt === 'left' ? { right: `calc(${100 - left}% + 4px)` } : { right: `calc(${100 - left - width}% + 4px)` }}
          >
            {formatDuration(s.duration)}
            {s.kind > 1 ? ` · ${kindName(s.kind)}` : ''}
          </span>
        </div>
      </div>,
    );
  }

  return (
    <div class="waterfall" data-testid="waterfall">
      <div class="wf-grid" aria-hidden="true">
        {niceTicks(trace.duration, 6).map((t) => (
          <span style={{ left: `${(t / dur) * 100}%` }} />
        ))}
      </div>
      <div class="wf-header">
        <div class="wf-name head">Service and operation</div>
        <TimeAxis duration={trace.duration} className="wf-timeline" />
      </div>
      <div
        class="wf-body"
        ref={body}
        onScroll={onScroll}
        tabIndex={0}
        role="tree"
        aria-label={`Spans of trace ${trace.traceId}: arrow keys move, left and right collapse and expand, Enter shows details`}
        aria-activedescendant={selected >= 0 && posOf[selected] >= first && posOf[selected] < last ? `span-row-${selected}` : undefined}
        onKeyDown={onKeyDown}
        data-testid="waterfall-body"
      >
        <div class="wf-spacer" style={{ height: `${rows.length * ROW_HEIGHT}px` }}>
          {items}
        </div>
      </div>
    </div>
  );
}
