// Compare two traces: spans aligned by their path of (service, operation),
// each pair marked slower, faster or the same by its latency difference,
// and spans present in one trace only marked added or removed. URL: a, b
// (trace IDs), view (aligned or ops), changed=1 (only changes), rel (the
// relative threshold in percent).

import { useMemo, useState } from 'preact/hooks';
import { useFetch, type FetchState } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { VirtualList } from '../components/VirtualList';
import { useDocumentTitle } from '../hooks';
import { serviceColor } from '../lib/colors';
import { compareTraces, type CompareRow, type Comparison, type DiffStatus } from '../lib/compare';
import { formatCount, formatDuration, formatPercent } from '../lib/format';
import { buildModel, type TraceModel } from '../lib/model';
import { href, navigate, setQuery, type Location } from '../router';

const validId = /^[0-9a-fA-F]{1,32}$/;

function IdForm({ a, b }: { a: string; b: string }) {
  const [va, setA] = useState(a);
  const [vb, setB] = useState(b);
  return (
    <form
      class="compare-form"
      onSubmit={(e) => {
        e.preventDefault();
        navigate(href('compare', { a: va.trim(), b: vb.trim() }));
      }}
    >
      <label>
        Trace A (baseline) <input value={va} onInput={(e) => setA((e.target as HTMLInputElement).value)} placeholder="trace ID" name="a" />
      </label>
      <label>
        Trace B <input value={vb} onInput={(e) => setB((e.target as HTMLInputElement).value)} placeholder="trace ID" name="b" />
      </label>
      <button type="submit" class="primary">
        Compare
      </button>
    </form>
  );
}

const statusLabel: Record<DiffStatus, string> = { same: 'same', slower: 'slower', faster: 'faster', added: 'only in B', removed: 'only in A' };

export function ComparePage({ loc }: { loc: Location }) {
  const a = (loc.query.get('a') ?? '').trim();
  const b = (loc.query.get('b') ?? '').trim();
  useDocumentTitle(a && b ? `Compare ${a.slice(0, 8)} and ${b.slice(0, 8)}` : 'Compare traces');
  const okA = validId.test(a);
  const okB = validId.test(b);
  const fa = useFetch<unknown>(okA && okB ? `/api/v1/traces/${a}` : null, { timeoutMs: 60_000 });
  const fb = useFetch<unknown>(okA && okB ? `/api/v1/traces/${b}` : null, { timeoutMs: 60_000 });
  const ma = useMemo(() => (fa.state.status === 'ok' ? buildModel(a, fa.state.data) : null), [fa.state]);
  const mb = useMemo(() => (fb.state.status === 'ok' ? buildModel(b, fb.state.data) : null), [fb.state]);
  const rel = Number(loc.query.get('rel') || '10');
  const cmp = useMemo(() => (ma && mb ? compareTraces(ma.tree, mb.tree, { relThreshold: rel / 100 }) : null), [ma, mb, rel]);

  if (!a || !b || !okA || !okB) {
    return (
      <div class="page compare-page">
        <h1>Compare traces</h1>
        {(a || b) && (!okA || !okB) && (
          <div class="banner warn" role="alert">
            {!okA ? `"${a}"` : `"${b}"`} is not a trace ID (1 to 32 hexadecimal digits).
          </div>
        )}
        <p class="muted">Pick two traces of the same operation, a fast one and a slow one, and see which spans made the difference. Select two traces in the search results, or paste their IDs:</p>
        <IdForm a={a} b={b} />
      </div>
    );
  }
  const side = (label: string, id: string, f: { state: FetchState<unknown>; retry: () => void; cancel: () => void }) => {
    if (f.state.status === 'loading') return <Loading label={`Loading trace ${label}`} since={f.state.since} onCancel={f.cancel} />;
    if (f.state.status === 'error') {
      if (f.state.error.status === 404)
        return (
          <div class="state state-empty" data-state="not-found" role="alert">
            <div class="state-title">Trace {label} not found</div>
            <p>
              No span of trace <code>{id}</code> is stored.
            </p>
          </div>
        );
      return <ErrorState error={f.state.error} onRetry={f.retry} title={`Trace ${label} could not be loaded`} />;
    }
    return null;
  };
  const sa = side('A', a, fa);
  const sb = side('B', b, fb);
  if (sa || sb || !ma || !mb || !cmp) {
    return (
      <div class="page compare-page">
        <h1>Compare traces</h1>
        {sa}
        {sb}
        <IdForm a={a} b={b} />
      </div>
    );
  }
  return <CompareView a={ma} b={mb} cmp={cmp} loc={loc} rel={rel} />;
}

function CompareView({ a, b, cmp, loc, rel }: { a: TraceModel; b: TraceModel; cmp: Comparison; loc: Location; rel: number }) {
  const view = loc.query.get('view') === 'ops' ? 'ops' : 'aligned';
  const onlyChanged = loc.query.get('changed') === '1';
  const rows = useMemo(() => {
    if (!onlyChanged) return cmp.rows;
    // Changed rows with their ancestors, for context.
    const keep = new Uint8Array(cmp.rows.length);
    cmp.rows.forEach((r, i) => {
      if (r.status === 'same') return;
      for (let k = i; k >= 0 && !keep[k]; k = cmp.rows[k].parentRow) keep[k] = 1;
    });
    return cmp.rows.filter((_, i) => keep[i]);
  }, [cmp, onlyChanged]);
  const s = cmp.summary;
  const scale = Math.max(a.trace.duration, b.trace.duration) || 1;
  const delta = s.durB - s.durA;
  const rootA = a.trace.spans[a.cp.top];
  return (
    <div class="page compare-page">
      <h1>
        Compare <span class="svc">{rootA?.service}</span> <span class="op">{rootA?.name}</span>
      </h1>
      <div class="compare-head">
        <div class="side a">
          <div class="muted small">A (baseline)</div>
          <a href={href(`trace/${a.trace.traceId}`)} class="mono" data-testid="compare-a">
            {a.trace.traceId}
          </a>
          <div>
            {formatDuration(s.durA)} · {formatCount(s.spansA)} spans
          </div>
        </div>
        <div class={`delta-big ${delta > 0 ? 'slower' : delta < 0 ? 'faster' : ''}`} data-testid="compare-delta">
          {delta >= 0 ? '+' : ''}
          {formatDuration(delta)} {s.durA > 0 && <span class="small">({delta >= 0 ? '+' : ''}{formatPercent(delta / s.durA, 0)})</span>}
        </div>
        <div class="side b">
          <div class="muted small">B</div>
          <a href={href(`trace/${b.trace.traceId}`)} class="mono" data-testid="compare-b">
            {b.trace.traceId}
          </a>
          <div>
            {formatDuration(s.durB)} · {formatCount(s.spansB)} spans
          </div>
        </div>
      </div>
      <ul class="diff-counts" data-testid="diff-counts">
        <li class="slower">{s.slower} slower</li>
        <li class="faster">{s.faster} faster</li>
        <li class="added">{s.added} only in B</li>
        <li class="removed">{s.removed} only in A</li>
        <li class="same">{s.same} same</li>
      </ul>
      <div class="toolbar">
        <div class="tabs" role="tablist">
          <button role="tab" type="button" aria-selected={view === 'aligned'} class={view === 'aligned' ? 'active' : ''} onClick={() => setQuery({ view: null })}>
            Aligned spans
          </button>
          <button role="tab" type="button" aria-selected={view === 'ops'} class={view === 'ops' ? 'active' : ''} onClick={() => setQuery({ view: 'ops' })}>
            By operation
          </button>
        </div>
        <label class="check">
          <input type="checkbox" checked={onlyChanged} onChange={() => setQuery({ changed: onlyChanged ? null : '1' })} /> Only changes
        </label>
        <label>
          Threshold{' '}
          <select value={String(rel)} onChange={(e) => setQuery({ rel: (e.target as HTMLSelectElement).value === '10' ? null : (e.target as HTMLSelectElement).value })}>
            {[5, 10, 20, 50].map((n) => (
              <option value={String(n)}>{n}%</option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setQuery({ a: b.trace.traceId, b: a.trace.traceId })}>
          Swap A and B
        </button>
      </div>
      {view === 'aligned' ? (
        <div class="aligned">
          <div class="cmp-row cmp-header" aria-hidden="true">
            <div class="cmp-name">Service and operation</div>
            <div class="num">A</div>
            <div class="num">B</div>
            <div class="num">Δ</div>
            <div class="cmp-tl">A timeline</div>
            <div class="cmp-tl">B timeline</div>
          </div>
          {rows.length === 0 ? (
            <Empty title="No differences">Every aligned span is within the threshold.</Empty>
          ) : (
            <VirtualList count={rows.length} rowHeight={24} label="Aligned spans" testId="aligned" render={(i, style) => <Row r={rows[i]} a={a} b={b} scale={scale} style={style} />} />
          )}
        </div>
      ) : (
        <OpsTable cmp={cmp} onlyChanged={onlyChanged} />
      )}
    </div>
  );
}

function Row({ r, a, b, scale, style }: { r: CompareRow; a: TraceModel; b: TraceModel; scale: number; style: Record<string, string> }) {
  const sa = r.a >= 0 ? a.trace.spans[r.a] : undefined;
  const sb = r.b >= 0 ? b.trace.spans[r.b] : undefined;
  const bar = (s: typeof sa) => (s ? <span class="bar" style={{ left: `${(s.start / scale) * 100}%`, width: `max(${(s.duration / scale) * 100}%, 1px)`, background: serviceColor(s.service) }} /> : null);
  const rel = r.durA > 0 ? r.delta / r.durA : 0;
  return (
    <div class={`cmp-row st-${r.status}`} style={style} role="listitem" data-status={r.status} title={`${r.service}: ${r.name} — ${statusLabel[r.status]}`}>
      <div class="cmp-name" style={{ '--depth': Math.min(r.depth, 40) }}>
        <span class="indent" />
        <span class="svc-bar" style={{ background: serviceColor(r.service) }} />
        <span class="svc">{r.service}</span> <span class="op">{r.name}</span>
        <span class={`badge st-${r.status}`}>{statusLabel[r.status]}</span>
      </div>
      <div class="num">{sa ? <a href={href(`trace/${a.trace.traceId}`, { span: sa.spanId })}>{formatDuration(r.durA)}</a> : '–'}</div>
      <div class="num">{sb ? <a href={href(`trace/${b.trace.traceId}`, { span: sb.spanId })}>{formatDuration(r.durB)}</a> : '–'}</div>
      <div class={`num delta st-${r.status}`}>
        {sa && sb ? (
          <>
            {r.delta >= 0 ? '+' : ''}
            {formatDuration(r.delta)}
            {r.durA > 0 && Math.abs(rel) >= 0.01 && <span class="small"> {formatPercent(rel, 0)}</span>}
          </>
        ) : (
          ''
        )}
      </div>
      <div class="cmp-tl">{bar(sa)}</div>
      <div class="cmp-tl">{bar(sb)}</div>
    </div>
  );
}

function OpsTable({ cmp, onlyChanged }: { cmp: Comparison; onlyChanged: boolean }) {
  const ops = onlyChanged ? cmp.byOp.filter((o) => o.status !== 'same') : cmp.byOp;
  return (
    <table class="ops-table" data-testid="ops-table">
      <thead>
        <tr>
          <th scope="col">Service and operation</th>
          <th scope="col" class="num">
            Count A → B
          </th>
          <th scope="col" class="num">
            Total A
          </th>
          <th scope="col" class="num">
            Total B
          </th>
          <th scope="col" class="num">
            Self time Δ
          </th>
          <th scope="col">Change</th>
        </tr>
      </thead>
      <tbody>
        {ops.map((o) => (
          <tr class={`st-${o.status}`}>
            <th scope="row">
              <span class="svc-dot" style={{ background: serviceColor(o.service) }} />
              <span class="svc">{o.service}</span> <span class="op">{o.name}</span>
            </th>
            <td class="num">
              {o.countA} → {o.countB}
            </td>
            <td class="num">{formatDuration(o.totalA)}</td>
            <td class="num">{formatDuration(o.totalB)}</td>
            <td class={`num delta st-${o.deltaSelf > 0 ? 'slower' : o.deltaSelf < 0 ? 'faster' : 'same'}`}>
              {o.deltaSelf >= 0 ? '+' : ''}
              {formatDuration(o.deltaSelf)}
            </td>
            <td>
              <span class={`badge st-${o.status}`}>{statusLabel[o.status]}</span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
