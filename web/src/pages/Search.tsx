// The search page: a TraceQL editor or a form that writes TraceQL, the
// time range, and the matching traces newest first, a page at a time,
// with a scatter plot of their durations. Everything that defines the
// results is in the URL: q, since or start/end, limit, cursor, back; rank=1
// opens "What distinguishes these?" (the attribute ranking of the spans
// the query matches) and rankBase holds its baseline query.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, qs, timeParams, useFetch, type SearchResponse, type TraceSummary } from '../api';
import { AttrRankPanel } from '../components/AttrRank';
import { AttrValue } from '../components/AttrValue';
import { Scatter } from '../components/Scatter';
import { Empty, ErrorState, Loading } from '../components/States';
import { TimeRange, sinceToGo, timeFromQuery, type TimeValue } from '../components/TimeRange';
import { TraceQLEditor } from '../components/TraceQLEditor';
import { useDocumentTitle } from '../hooks';
import { buildTraceQL, emptyForm, parseBuilder, type BuilderForm } from '../lib/builder';
import { serviceColor } from '../lib/colors';
import { formatCount, formatDuration, formatRelative, formatTime } from '../lib/format';
import { splitNanos } from '../lib/otlp';
import { errorPosition, kindValues } from '../lib/traceql';
import { href, navigate, setQuery, type Location } from '../router';

const isMatchAll = (q: string) => /^\s*(\{\s*\})?\s*$/.test(q);

/** searchURL is the API request of the search in the page's URL. */
export function searchURL(q: URLSearchParams): string {
  const text = q.get('q') ?? '';
  const time = timeParams(q);
  if (time.since) time.since = sinceToGo(time.since);
  const base = { limit: q.get('limit') || '20', cursor: q.get('cursor') ?? undefined, ...time };
  // Match-all runs as the native search: same answer, exact total.
  return isMatchAll(text) ? `/api/v1/search?${qs(base)}` : `/api/v1/search?${qs({ q: text, ...base })}`;
}

export function SearchPage({ loc }: { loc: Location }) {
  const q = loc.query.get('q') ?? '';
  const urlMode = loc.query.get('mode');
  const mode = urlMode === 'traceql' || urlMode === 'builder' ? urlMode : parseBuilder(q) ? 'builder' : 'traceql';
  const [draft, setDraft] = useState(q);
  useEffect(() => setDraft(q), [q]);
  useDocumentTitle(q && !isMatchAll(q) ? `Search ${q}` : 'Search');

  const apiURL = searchURL(loc.query);
  const { state, retry, cancel } = useFetch<SearchResponse>(apiURL);
  const time: TimeValue = { since: loc.query.get('since') ?? '', start: loc.query.get('start') ?? '', end: loc.query.get('end') ?? '' };

  const run = (text = draft) => {
    // A new query starts again at the first page.
    setQuery({ q: text.trim() || null, cursor: null, back: null, page: null }, { replace: false });
    if (text === q) retry();
  };
  const queryError = state.status === 'error' && state.error.kind === 'http' && state.error.status === 400 ? state.error : null;
  const editorError = queryError ? { message: queryError.message, position: errorPosition(q, queryError.message, queryError.position) } : null;

  return (
    <div class="page search-page">
      <h1 class="visually-hidden">Search traces</h1>
      <section class="query-panel" aria-label="Query">
        <div class="tabs" role="tablist" aria-label="Query mode">
          <button role="tab" type="button" aria-selected={mode === 'builder'} class={mode === 'builder' ? 'active' : ''} onClick={() => setQuery({ mode: 'builder' })}>
            Builder
          </button>
          <button role="tab" type="button" aria-selected={mode === 'traceql'} class={mode === 'traceql' ? 'active' : ''} onClick={() => setQuery({ mode: 'traceql' })}>
            TraceQL
          </button>
        </div>
        {mode === 'builder' ? (
          <Builder q={draft} onChange={setDraft} onRun={run} error={editorError?.message ?? null} />
        ) : (
          <TraceQLEditor value={draft} onChange={setDraft} onRun={() => run()} error={draft === q ? editorError : null} />
        )}
        <div class="query-actions">
          <TimeRange value={time} onChange={(v) => setQuery({ since: v.since || null, start: v.start || null, end: v.end || null, cursor: null, back: null, page: null }, { replace: false })} />
          <label>
            Page size{' '}
            <select value={loc.query.get('limit') || '20'} onChange={(e) => setQuery({ limit: (e.target as HTMLSelectElement).value, cursor: null, back: null, page: null })}>
              {[10, 20, 50, 100, 200].map((n) => (
                <option value={n}>{n}</option>
              ))}
            </select>
          </label>
          <button type="button" class="primary" onClick={() => run()} data-testid="run-search">
            Search
          </button>
        </div>
      </section>
      <section class="results" aria-label="Results" aria-busy={state.status === 'loading'}>
        {state.status === 'loading' && <Loading label="Searching" since={state.since} onCancel={cancel} />}
        {state.status === 'error' && !queryError && <ErrorState error={state.error} onRetry={retry} />}
        {state.status === 'error' && queryError && mode === 'builder' && <ErrorState error={queryError} title="The query was refused" />}
        {state.status === 'ok' && <Results res={state.data} loc={loc} ms={state.ms} />}
      </section>
    </div>
  );
}

function Results({ res, loc, ms }: { res: SearchResponse; loc: Location; ms: number }) {
  const [selected, setSelected] = useState<string[]>([]);
  const page = Number(loc.query.get('page') || '1');
  const qText = loc.query.get('q') ?? '';
  const matchAll = isMatchAll(qText);
  const ranking = loc.query.get('rank') === '1';
  const rankTime = timeFromQuery(loc.query);
  // back lists the cursors of the earlier pages ("~" for the first).
  const backParam = loc.query.get('back');
  const back = backParam ? backParam.split(',') : [];
  if (res.traces.length === 0) {
    return (
      <Empty title={page > 1 ? 'No more traces' : 'No traces match'}>
        Nothing in the chosen time range matches this query. Widen the time range, or loosen the conditions.
      </Empty>
    );
  }
  const maxDur = Math.max(...res.traces.map((t) => Number(t.durationNanos)));
  const toggle = (id: string) => setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s.slice(-1), id]));
  const next = () => setQuery({ cursor: res.nextCursor, back: [...back, loc.query.get('cursor') || '~'].join(','), page: page + 1 }, { replace: false });
  const prev = () => {
    const b = [...back];
    const c = b.pop();
    setQuery({ cursor: c && c !== '~' ? c : null, back: b.join(',') || null, page: page > 2 ? page - 1 : null }, { replace: false });
  };
  return (
    <>
      <div class="results-head">
        <div data-testid="result-count">
          <strong>{formatCount(res.total)}{res.totalIsLowerBound ? '+' : ''}</strong> {res.total === 1 ? 'trace' : 'traces'}
          {res.totalIsLowerBound ? ' found so far' : ''} · page {page} · {Math.round(ms)} ms
        </div>
        <div class="spacer" />
        <button
          type="button"
          aria-pressed={ranking}
          disabled={matchAll}
          onClick={() => setQuery({ rank: ranking ? null : '1', rankBase: null })}
          title={matchAll ? 'Add conditions first: the ranking compares the spans your query matches with the other spans of their operations' : 'Rank the attribute values that set the matching spans apart from the others'}
          data-testid="rank-button"
        >
          What distinguishes these?
        </button>
        <button type="button" disabled={selected.length !== 2} onClick={() => navigate(href('compare', { a: selected[0], b: selected[1] }))} title="Select two traces with the checkboxes">
          Compare selected ({selected.length}/2)
        </button>
      </div>
      {res.warning && (
        <div class="banner warn" role="status">
          {res.warning}
        </div>
      )}
      {ranking && !matchAll && <AttrRankPanel q={qText} time={rankTime.api} link={rankTime.link} baseline={loc.query.get('rankBase') ?? ''} />}
      <Scatter traces={res.traces} />
      <table class="results-table" data-testid="results">
        <thead>
          <tr>
            <th scope="col">
              <span class="visually-hidden">Select</span>
            </th>
            <th scope="col">Started</th>
            <th scope="col">Root service and operation</th>
            <th scope="col" class="num">
              Duration
            </th>
            <th scope="col" class="num">
              Spans
            </th>
            <th scope="col" class="num">
              Errors
            </th>
            <th scope="col">Services</th>
          </tr>
        </thead>
        <tbody>
          {res.traces.map((t) => (
            <ResultRow t={t} maxDur={maxDur} selected={selected.includes(t.traceID)} onToggle={() => toggle(t.traceID)} />
          ))}
        </tbody>
      </table>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={page <= 1} onClick={prev}>
          ← Newer
        </button>
        {page > 1 && (
          <a class="button" href={href('search', { ...Object.fromEntries(loc.query), cursor: null, back: null, page: null })}>
            First page
          </a>
        )}
        <button type="button" disabled={!res.nextCursor} onClick={next} data-testid="next-page">
          Older →
        </button>
      </nav>
    </>
  );
}

function ResultRow({ t, maxDur, selected, onToggle }: { t: TraceSummary; maxDur: number; selected: boolean; onToggle: () => void }) {
  const [s, ns] = splitNanos(t.startTimeUnixNano);
  const startMs = s * 1e3 + ns / 1e6;
  const dur = Number(t.durationNanos);
  const url = href(`trace/${t.traceID}`);
  return (
    <tr class={t.errorCount ? 'has-errors' : ''} data-trace-id={t.traceID}>
      <td>
        <input type="checkbox" checked={selected} onChange={onToggle} aria-label={`Select trace ${t.traceID} for comparison`} />
      </td>
      <td>
        <a href={url} title={formatTime(startMs)}>
          {formatTime(startMs).slice(11)}
        </a>
        <div class="muted small">{formatRelative(startMs)}</div>
      </td>
      <td>
        <a href={url} class="root">
          <span class="svc-dot" style={{ background: serviceColor(t.rootServiceName) }} />
          <span class="svc">{t.rootServiceName || '(unknown)'}</span>
          <span class="op">{t.rootName || '(root not received)'}</span>
        </a>
        <div class="muted small mono">{t.traceID}</div>
      </td>
      <td class="num">
        <div class="dur-cell">
          <span>{formatDuration(dur)}</span>
          <span class="dur-bar" style={{ width: `${maxDur > 0 ? Math.max(2, (dur / maxDur) * 100) : 0}%` }} />
        </div>
      </td>
      <td class="num">{formatCount(t.spanCount)}</td>
      <td class={`num${t.errorCount ? ' err' : ''}`}>{formatCount(t.errorCount)}</td>
      <td>
        <ul class="chips">
          {t.services.slice(0, 6).map((sv) => (
            <li class="chip" style={{ '--c': serviceColor(sv.name) }} title={`${sv.name}: ${sv.spanCount} spans, ${sv.errorCount} errors`}>
              {sv.name} <span class="count">{sv.spanCount}</span>
              {sv.errorCount > 0 && <span class="count err">{sv.errorCount} err</span>}
            </li>
          ))}
          {t.services.length > 6 && <li class="chip more">+{t.services.length - 6}</li>}
        </ul>
      </td>
    </tr>
  );
}

// --- The form builder --------------------------------------------------------

const attrOps = ['=', '!=', '>', '>=', '<', '<=', '=~', '!~', 'exists'];

function useList(url: string | null, pick: (j: any) => string[]): string[] {
  const { state } = useFetch<any>(url, { timeoutMs: 10_000 });
  return useMemo(() => (state.status === 'ok' ? pick(state.data) : []), [state]);
}

function Builder({ q, onChange, onRun, error }: { q: string; onChange: (q: string) => void; onRun: (q?: string) => void; error: string | null }) {
  const parsed = useMemo(() => parseBuilder(q), [q]);
  const [form, setForm] = useState<BuilderForm>(parsed ?? emptyForm());
  useEffect(() => {
    if (parsed && buildTraceQL(parsed) !== buildTraceQL(form)) setForm(parsed);
  }, [q]);
  const services = useList('/api/v1/services', (j) => j.services ?? []);
  const ops = useList(`/api/v1/span-names?${qs({ service: form.service })}`, (j) => j.spanNames ?? []);
  const attrKeys = useList('/api/v1/attributes', (j) => j.attributes ?? []);
  const update = (f: BuilderForm) => {
    setForm(f);
    onChange(buildTraceQL(f));
  };
  if (!parsed && q.trim()) {
    return (
      <div class="builder-unsupported" role="status">
        <p>This query uses TraceQL the form cannot show (several spansets, ||, pipelines…).</p>
        <AttrValue value={q} pre />
        <p>
          <button type="button" onClick={() => setQuery({ mode: 'traceql' })}>
            Edit as TraceQL
          </button>{' '}
          <button type="button" onClick={() => update(emptyForm())}>
            Start a new form
          </button>
        </p>
      </div>
    );
  }
  const field = (k: keyof BuilderForm) => (e: Event) => update({ ...form, [k]: (e.target as HTMLInputElement).value });
  const submit = (e: Event) => {
    e.preventDefault();
    onRun(buildTraceQL(form));
  };
  return (
    <form class="builder" onSubmit={submit} aria-label="Query builder">
      <div class="builder-grid">
        <label>
          Service
          <input list="svc-list" value={form.service} onInput={field('service')} placeholder="any" name="service" />
          <datalist id="svc-list">
            {services.map((s) => (
              <option value={s} />
            ))}
          </datalist>
        </label>
        <label>
          Operation
          <input list="op-list" value={form.operation} onInput={field('operation')} placeholder="any" name="operation" />
          <datalist id="op-list">
            {ops.map((s) => (
              <option value={s} />
            ))}
          </datalist>
        </label>
        <label>
          Status
          <select value={form.status} onChange={field('status')} name="status">
            <option value="">any</option>
            <option value="error">error</option>
            <option value="ok">ok</option>
            <option value="unset">unset</option>
          </select>
        </label>
        <label>
          Kind
          <select value={form.kind} onChange={field('kind')} name="kind">
            <option value="">any</option>
            {kindValues.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          Min duration
          <input value={form.minDuration} onInput={field('minDuration')} placeholder="e.g. 100ms" pattern="^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$" name="minDuration" />
        </label>
        <label>
          Max duration
          <input value={form.maxDuration} onInput={field('maxDuration')} placeholder="e.g. 2s" pattern="^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$" name="maxDuration" />
        </label>
      </div>
      <fieldset class="attrs">
        <legend>Attributes (all on the same span)</legend>
        <datalist id="attr-list">
          {attrKeys.map((s) => (
            <option value={s} />
          ))}
        </datalist>
        {form.attrs.map((a, i) => {
          const set = (patch: Partial<typeof a>) => update({ ...form, attrs: form.attrs.map((x, j) => (j === i ? { ...x, ...patch } : x)) });
          return (
            <div class="attr-row">
              <input list="attr-list" aria-label={`Attribute ${i + 1} key`} value={a.key} placeholder="http.response.status_code" onInput={(e) => set({ key: (e.target as HTMLInputElement).value })} />
              <select aria-label={`Attribute ${i + 1} operator`} value={a.op} onChange={(e) => set({ op: (e.target as HTMLSelectElement).value })}>
                {attrOps.map((o) => (
                  <option value={o}>{o}</option>
                ))}
              </select>
              {a.op !== 'exists' && <input aria-label={`Attribute ${i + 1} value`} value={a.value} placeholder="value" onInput={(e) => set({ value: (e.target as HTMLInputElement).value })} />}
              <button type="button" class="icon" aria-label={`Remove attribute ${i + 1}`} onClick={() => update({ ...form, attrs: form.attrs.filter((_, j) => j !== i) })}>
                ×
              </button>
            </div>
          );
        })}
        <button type="button" onClick={() => update({ ...form, attrs: [...form.attrs, { key: '', op: '=', value: '' }] })}>
          + Attribute
        </button>
      </fieldset>
      <div class="builder-preview">
        <span class="muted">TraceQL:</span> <code data-testid="builder-traceql">{buildTraceQL(form)}</code>
      </div>
      {error && (
        <div class="tql-error" role="alert">
          {error}
        </div>
      )}
      <button type="submit" class="visually-hidden">
        Search
      </button>
    </form>
  );
}

export { ApiError };
