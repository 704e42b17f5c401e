// The trace view: header and summary, waterfall or flame graph with the
// critical path, find-in-trace, and the span detail panel. Its state is in
// the URL: view, span (the selected span), find, levels, c (spans whose
// collapsed state differs from what levels gives), cp=0 (critical path
// hidden), why=1 (the "why slow" panel) and finding (the one picked).

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useFetch } from '../api';
import { Flame } from '../components/Flame';
import { SpanDetail } from '../components/SpanDetail';
import { Empty, ErrorState, Loading } from '../components/States';
import { TraceSummaryView } from '../components/TraceSummaryView';
import { Waterfall } from '../components/Waterfall';
import { WhySlowPanel, useExplain } from '../components/WhySlow';
import { useDocumentTitle } from '../hooks';
import { findingSpans } from '../lib/analysis';
import { serviceColor } from '../lib/colors';
import { formatCount, formatDuration, formatTime } from '../lib/format';
import { buildModel, collapsedSet, findSpans, type TraceModel } from '../lib/model';
import { ancestors, visibleRows } from '../lib/tree';
import { href, navigate, setQuery, type Location } from '../router';

const validId = /^[0-9a-fA-F]{1,32}$/;

declare global {
  interface Window {
    /** timings of the last trace shown, for the end-to-end tests */
    __clewTrace?: { traceId: string; spans: number; fetchMs: number; parseMs: number; modelMs: number; renderedAt: number };
  }
}

export function TracePage({ id, loc }: { id: string; loc: Location }) {
  const ok = validId.test(id) && !/^0+$/.test(id);
  useDocumentTitle(`Trace ${id.slice(0, 12)}`);
  const { state, retry, cancel } = useFetch<unknown>(ok ? `/api/v1/traces/${id}` : null, { timeoutMs: 60_000 });
  const model = useMemo(() => (state.status === 'ok' ? buildModel(id.toLowerCase().padStart(32, '0'), state.data) : null), [state]);

  if (!ok) {
    return (
      <div class="page">
        <Empty title="That is not a trace ID">
          A trace ID is 1 to 32 hexadecimal digits, not all zero; "{id}" is not. <a href={href('search')}>Search for traces</a>.
        </Empty>
      </div>
    );
  }
  if (state.status === 'loading' || state.status === 'idle') return <div class="page"><Loading label={`Loading trace ${id}`} since={state.status === 'loading' ? state.since : undefined} onCancel={cancel} /></div>;
  if (state.status === 'error') {
    if (state.error.status === 404) {
      return (
        <div class="page">
          <div class="state state-empty" data-state="not-found" role="alert">
            <div class="state-title">Trace not found</div>
            <p>
              No span of trace <code>{id}</code> is stored. It may be older than the retention period, its spans may not have arrived yet, or the ID may be mistyped.
            </p>
            <p>
              <button type="button" onClick={retry}>
                Try again
              </button>{' '}
              <a class="button" href={href('search')}>
                Search traces
              </a>
            </p>
          </div>
        </div>
      );
    }
    return (
      <div class="page">
        <ErrorState error={state.error} onRetry={retry} />
      </div>
    );
  }
  if (!model || model.trace.spans.length === 0) {
    return (
      <div class="page">
        <Empty title="This trace has no spans">The server returned trace {id} without spans.</Empty>
      </div>
    );
  }
  return <TraceView model={model} loc={loc} fetchMs={state.ms} />;
}

function TraceView({ model, loc, fetchMs }: { model: TraceModel; loc: Location; fetchMs: number }) {
  const { trace, tree, summary } = model;
  const q = loc.query;
  const view = q.get('view') === 'flame' ? 'flame' : q.get('view') === 'summary' ? 'summary' : 'waterfall';
  const showCritical = q.get('cp') !== '0';
  const levels = Number(q.get('levels') || '0') || 0;
  const toggledParam = q.get('c') ?? '';
  const toggled = useMemo(() => new Set(toggledParam ? toggledParam.split(',') : []), [toggledParam]);
  const collapsed = useMemo(() => collapsedSet(model, levels, toggled), [model, levels, toggled]);
  const rows = useMemo(() => visibleRows(tree, collapsed), [tree, collapsed]);
  const selectedId = q.get('span') ?? '';
  const selected = selectedId ? model.spanIndex.get(selectedId.toLowerCase()) ?? -1 : -1;
  const findParam = q.get('find') ?? '';
  const [find, setFind] = useState(findParam);
  useEffect(() => setFind(findParam), [findParam]);
  const matchList = useMemo(() => findSpans(model, findParam), [model, findParam]);
  const matches = useMemo(() => new Set(matchList), [matchList]);
  const findInput = useRef<HTMLInputElement>(null);
  const mainRef = useRef<HTMLDivElement>(null);
  const [compareWith, setCompareWith] = useState('');
  // Why slow: the explanation, and the spans of the finding picked.
  const why = q.get('why') === '1';
  const finding = why ? Number(q.get('finding') ?? '-1') : -1;
  const explain = useExplain(trace.traceId, why);
  const findings = explain.state.status === 'ok' ? explain.state.data.findings ?? [] : [];
  const highlight = useMemo(() => new Set(findingSpans(findings[finding], model.spanIndex)), [explain.state, finding, model]);
  const toggleWhy = () => setQuery({ why: why ? null : '1', finding: null });

  const setToggled = (next: Set<string>) => setQuery({ c: [...next].slice(0, 300).join(',') || null });
  const toggle = (i: number) => {
    const id = trace.spans[i].spanId;
    const next = new Set(toggled);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setToggled(next);
  };
  const select = (i: number) => setQuery({ span: i >= 0 ? trace.spans[i].spanId : null });
  // Show a span: expand its collapsed ancestors and select it.
  const reveal = (i: number) => {
    const next = new Set(toggled);
    let changed = false;
    for (const a of ancestors(tree, i)) {
      if (collapsed.has(a)) {
        const id = trace.spans[a].spanId;
        if (next.has(id)) next.delete(id);
        else next.add(id);
        changed = true;
      }
    }
    setQuery({ span: trace.spans[i].spanId, ...(changed ? { c: [...next].slice(0, 300).join(',') || null } : {}) });
  };
  // A deep link to a span inside a collapsed subtree opens it.
  useEffect(() => {
    if (selected >= 0 && ancestors(tree, selected).some((a) => collapsed.has(a))) reveal(selected);
  }, [selected]);

  const pickFinding = (i: number) => {
    const spans = findingSpans(findings[i], model.spanIndex);
    setQuery({ finding: i >= 0 ? i : null, view: spans.length ? null : q.get('view') });
    if (spans.length) reveal(spans[0]);
  };

  const matchPos = selected >= 0 ? matchList.indexOf(selected) : -1;
  const jump = (dir: 1 | -1) => {
    if (!matchList.length) return;
    let k: number;
    if (matchPos >= 0) k = (matchPos + dir + matchList.length) % matchList.length;
    else if (dir > 0) {
      const pos = selected >= 0 ? tree.preorderPos[selected] : -1;
      k = matchList.findIndex((m) => tree.preorderPos[m] > pos);
      if (k < 0) k = 0;
    } else k = matchList.length - 1;
    reveal(matchList[k]);
  };

  // Page shortcuts (not while typing).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) return;
      if (e.key === '/') {
        e.preventDefault();
        findInput.current?.focus();
      } else if (e.key === 'w') setQuery({ view: null });
      else if (e.key === 'f') setQuery({ view: 'flame' });
      else if (e.key === 's') setQuery({ view: 'summary' });
      else if (e.key === 'c') setQuery({ cp: showCritical ? '0' : null });
      else if (e.key === 'y') toggleWhy();
      else if (e.key === 'n') jump(1);
      else if (e.key === 'N') jump(-1);
      else if (e.key === 'Escape' && selected >= 0) select(-1);
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  });

  // First render timing, for people (the footer) and the e2e tests.
  const [renderMs, setRenderMs] = useState<number | null>(null);
  const onRendered = () => {
    requestAnimationFrame(() =>
      setTimeout(() => {
        const now = performance.now();
        performance.mark('clew:trace-rendered');
        window.__clewTrace = {
          traceId: trace.traceId,
          spans: trace.spans.length,
          fetchMs,
          parseMs: model.timing.parse,
          modelMs: model.timing.tree + model.timing.critical + model.timing.summary,
          renderedAt: now,
        };
        setRenderMs(now);
      }),
    );
  };

  const root = trace.spans[model.cp.top] ?? trace.spans[0];
  useDocumentTitle(`${root.service}: ${root.name}`);
  const viewTab = (v: string, label: string, key: string) => (
    <button role="tab" type="button" aria-selected={view === v} class={view === v ? 'active' : ''} onClick={() => setQuery({ view: v === 'waterfall' ? null : v })} title={`${label} (${key})`}>
      {label}
    </button>
  );

  return (
    <div class="page trace-page">
      <header class="trace-head">
        <div>
          <h1>
            <span class="svc-dot" style={{ background: serviceColor(root.service) }} />
            <span class="svc">{root.service}</span> <span class="op">{root.name}</span>
          </h1>
          <div class="muted mono small" data-testid="trace-id">
            {trace.traceId}
          </div>
        </div>
        <dl class="facts inline">
          <dt>Started</dt>
          <dd>{formatTime(trace.startMs)}</dd>
          <dt>Duration</dt>
          <dd data-testid="trace-duration">{formatDuration(trace.duration)}</dd>
          <dt>Spans</dt>
          <dd data-testid="trace-spans">{formatCount(trace.spans.length)}</dd>
          <dt>Services</dt>
          <dd>{summary.services.length}</dd>
          <dt>Depth</dt>
          <dd>{summary.depth}</dd>
          <dt>Errors</dt>
          <dd class={summary.errors ? 'err' : ''}>{formatCount(summary.errors)}</dd>
        </dl>
      </header>
      <div class="toolbar" role="toolbar" aria-label="Trace view">
        <div class="tabs" role="tablist" aria-label="View">
          {viewTab('waterfall', 'Waterfall', 'w')}
          {viewTab('flame', 'Flame graph', 'f')}
          {viewTab('summary', 'Summary', 's')}
        </div>
        <button type="button" class={`why-button${why ? ' active' : ''}`} aria-pressed={why} onClick={toggleWhy} title="Compare with similar traces and rank what made this one slow (y)" data-testid="why-button">
          Why slow?
        </button>
        <label class="check" title="Highlight the critical path (c)">
          <input type="checkbox" checked={showCritical} onChange={() => setQuery({ cp: showCritical ? '0' : null })} /> Critical path
        </label>
        {view === 'waterfall' && (
          <label>
            Levels{' '}
            <select value={String(levels)} onChange={(e) => setQuery({ levels: (e.target as HTMLSelectElement).value === '0' ? null : (e.target as HTMLSelectElement).value, c: null })}>
              <option value="0">all</option>
              {[1, 2, 3, 4, 5, 6].map((n) => (
                <option value={String(n)}>{n}</option>
              ))}
            </select>
          </label>
        )}
        <form
          class="find"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            if (find !== findParam) setQuery({ find: find || null });
            else jump(1);
          }}
        >
          <input
            ref={findInput}
            type="search"
            value={find}
            placeholder="Find in trace (/)"
            aria-label="Find spans by name, service, ID or attribute"
            onInput={(e) => setFind((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && e.shiftKey) {
                e.preventDefault();
                jump(-1);
              } else if (e.key === 'Escape') {
                setFind('');
                setQuery({ find: null });
              }
            }}
            data-testid="find-input"
          />
          {findParam && (
            <span class="find-count" data-testid="find-count" aria-live="polite">
              {matchList.length ? `${matchPos >= 0 ? matchPos + 1 : '–'} of ${matchList.length}` : 'no match'}
            </span>
          )}
          <button type="button" class="icon" aria-label="Previous match (N)" disabled={!matchList.length} onClick={() => jump(-1)}>
            ↑
          </button>
          <button type="button" class="icon" aria-label="Next match (n)" disabled={!matchList.length} onClick={() => jump(1)}>
            ↓
          </button>
        </form>
        <form
          class="compare-with"
          onSubmit={(e) => {
            e.preventDefault();
            const other = compareWith.trim();
            if (other) navigate(href('compare', { a: trace.traceId, b: other }));
          }}
        >
          <input value={compareWith} onInput={(e) => setCompareWith((e.target as HTMLInputElement).value)} placeholder="Compare with trace ID" aria-label="Trace ID to compare with" />
          <button type="submit">Compare</button>
        </form>
      </div>
      {why && <WhySlowPanel state={explain.state} retry={explain.retry} cancel={explain.cancel} picked={finding} onPick={pickFinding} onClose={toggleWhy} />}
      <div class={`trace-body${selected >= 0 ? ' with-detail' : ''}`}>
        <div class="trace-main" ref={mainRef}>
          {view === 'waterfall' && (
            <Waterfall
              model={model}
              rows={rows}
              collapsed={collapsed}
              selected={selected}
              matches={matches}
              highlight={highlight}
              showCritical={showCritical}
              onSelect={select}
              onToggle={toggle}
              onOpen={(i) => {
                select(i);
                requestAnimationFrame(() => document.getElementById('span-detail')?.focus());
              }}
              onRendered={onRendered}
            />
          )}
          {view === 'flame' && <FlameWithTiming model={model} selected={selected} matches={highlight.size ? highlight : matches} showCritical={showCritical} onSelect={select} onRendered={onRendered} />}
          {view === 'summary' && <SummaryWithTiming model={model} onRendered={onRendered} />}
        </div>
        {selected >= 0 && <SpanDetail model={model} index={selected} onSelect={reveal} onClose={() => select(-1)} />}
      </div>
      <footer class="trace-foot muted small" aria-live="off">
        {showCritical && <span class="legend"><span class="cp-swatch" /> critical path</span>}
        {renderMs !== null && (
          <span data-testid="render-timing">
            loaded in {Math.round(fetchMs)} ms · built in {Math.round(model.timing.parse + model.timing.tree + model.timing.critical + model.timing.summary)} ms · shown at {Math.round(renderMs)} ms after page load
          </span>
        )}
      </footer>
    </div>
  );
}

function FlameWithTiming(p: { model: TraceModel; selected: number; matches: ReadonlySet<number>; showCritical: boolean; onSelect: (i: number) => void; onRendered: () => void }) {
  useEffect(() => p.onRendered(), []);
  return <Flame model={p.model} selected={p.selected} matches={p.matches} showCritical={p.showCritical} onSelect={p.onSelect} onOpen={p.onSelect} />;
}

function SummaryWithTiming({ model, onRendered }: { model: TraceModel; onRendered: () => void }) {
  useEffect(() => onRendered(), []);
  return <TraceSummaryView model={model} />;
}
