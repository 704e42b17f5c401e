// The service map: services, databases, queues and external peers as
// nodes, calls as edges with request rate, error rate and latency, from
// GET /api/v1/servicegraph for the chosen time range (clew builds it from
// the spans as they arrive, no batch job). A node or edge opens a search
// for its traces. URL: since or start/end, focus (a node).

import { useMemo } from 'preact/hooks';
import { qs, timeParams, useFetch, type ServiceGraph } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { TimeRange, sinceToGo, type TimeValue } from '../components/TimeRange';
import { useDocumentTitle } from '../hooks';
import { serviceColor } from '../lib/colors';
import { formatCount, formatPercent, formatRate } from '../lib/format';
import { layoutGraph, type GraphEdge, type GraphNode, type PlacedNode } from '../lib/layout';
import { quoteString } from '../lib/traceql';
import { href, navigate, setQuery, type Location } from '../router';

const NW = 180;
const NH = 56;
const PAD = 40;

/** nodeQuery is the TraceQL that finds the traces through a node. */
export function nodeQuery(n: GraphNode): string {
  const v = quoteString(n.id);
  switch (n.type) {
    case 'database':
      return `{ span.db.system.name = ${v} || span.db.system = ${v} }`;
    case 'messaging':
      return `{ span.messaging.system = ${v} }`;
    case 'external':
      return `{ span.peer.service = ${v} || span.server.address = ${v} || span.net.peer.name = ${v} }`;
  }
  return `{ resource.service.name = ${v} }`;
}

/** edgeQuery is the TraceQL that finds the traces with a call along an edge. */
export function edgeQuery(e: GraphEdge): string {
  const src = quoteString(e.source);
  const dst = quoteString(e.target);
  switch (e.connectionType) {
    case 'database':
      return `{ resource.service.name = ${src} && (span.db.system.name = ${dst} || span.db.system = ${dst}) }`;
    case 'messaging_system':
      return `{ resource.service.name = ${src} && kind = producer } && { resource.service.name = ${dst} && kind = consumer }`;
    case 'virtual_node':
      return `{ resource.service.name = ${src} && (span.peer.service = ${dst} || span.server.address = ${dst} || span.net.peer.name = ${dst}) }`;
  }
  return `{ resource.service.name = ${src} && kind = client } > { resource.service.name = ${dst} && kind = server }`;
}

function nodeShape(p: PlacedNode, focus: boolean) {
  const { x, y } = p;
  const c = p.node.type === 'service' ? serviceColor(p.node.id) : 'var(--muted)';
  switch (p.node.type) {
    case 'database':
      return (
        <>
          <path class="node-shape" d={`M${x},${y + 8} a${NW / 2},8 0 0,0 ${NW},0 v${NH - 16} a${NW / 2},8 0 0,1 ${-NW},0 z`} style={{ '--c': c }} />
          <path class="node-shape top" d={`M${x},${y + 8} a${NW / 2},8 0 0,1 ${NW},0 a${NW / 2},8 0 0,1 ${-NW},0`} style={{ '--c': c }} />
        </>
      );
    case 'messaging':
      return <path class="node-shape" d={`M${x + 12},${y} h${NW - 12} l-12,${NH} h${-(NW - 12)} z`} style={{ '--c': c }} />;
    case 'external':
      return <rect class="node-shape external" x={x} y={y} width={NW} height={NH} rx={NH / 2} style={{ '--c': c }} />;
  }
  return <rect class={`node-shape${focus ? ' focus' : ''}`} x={x} y={y} width={NW} height={NH} rx={8} style={{ '--c': c }} />;
}

export function ServiceMapPage({ loc }: { loc: Location }) {
  useDocumentTitle('Service map');
  const time = timeParams(loc.query);
  if (time.since) time.since = sinceToGo(time.since);
  const { state, retry, cancel } = useFetch<ServiceGraph>(`/api/v1/servicegraph?${qs(time)}`);
  const tv: TimeValue = { since: loc.query.get('since') ?? '', start: loc.query.get('start') ?? '', end: loc.query.get('end') ?? '' };
  const focus = loc.query.get('focus') ?? '';
  const searchTime = { since: loc.query.get('since') ?? undefined, start: loc.query.get('start') ?? undefined, end: loc.query.get('end') ?? undefined };
  return (
    <div class="page map-page">
      <div class="page-head">
        <h1>Service map</h1>
        <TimeRange value={tv} id="map-time" onChange={(v) => setQuery({ since: v.since || null, start: v.start || null, end: v.end || null }, { replace: false })} />
      </div>
      {state.status === 'loading' && <Loading label="Loading the service graph" since={state.since} onCancel={cancel} />}
      {state.status === 'error' && state.error.status === 404 && (
        <div class="state state-empty" data-state="unavailable" role="status">
          <div class="state-title">Service map not available</div>
          <p>This clew does not serve the service graph (GET /api/v1/servicegraph answered 404). It needs a clew built with span metrics; search and trace views work without it.</p>
          <button type="button" onClick={retry}>
            Retry
          </button>
        </div>
      )}
      {state.status === 'error' && state.error.status !== 404 && <ErrorState error={state.error} onRetry={retry} />}
      {state.status === 'ok' && <Graph g={state.data} focus={focus} searchTime={searchTime} />}
    </div>
  );
}

function Graph({ g, focus, searchTime }: { g: ServiceGraph; focus: string; searchTime: Record<string, string | undefined> }) {
  const layout = useMemo(() => layoutGraph(g.nodes ?? [], g.edges ?? [], { nodeWidth: NW, nodeHeight: NH, gapX: 140, gapY: 40 }), [g]);
  if (layout.nodes.length === 0) {
    return (
      <Empty title="No calls in this time range">
        The graph is built from client and server spans (and database and messaging spans) as they arrive. Widen the time range, or send traces that cross services.
      </Empty>
    );
  }
  const pos = new Map(layout.nodes.map((n) => [n.node.id, n]));
  const search = (q: string) => navigate(href('search', { q, ...searchTime }));
  const key = (fn: () => void) => (e: KeyboardEvent) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      fn();
    }
  };
  const maxRate = Math.max(1e-9, ...layout.edges.map((e) => e.edge.ratePerSecond ?? 0));
  const loneTop = Math.min(...layout.nodes.filter((n) => n.layer < 0).map((n) => n.y));
  const W = layout.width + 2 * PAD;
  const H = layout.height + 2 * PAD + 40;
  return (
    <>
      <div class={`map-canvas${layout.edges.length <= 16 ? ' labels' : ''}`} data-testid="service-map">
        <svg width={W} height={H} role="group" aria-label={`Service map: ${layout.nodes.length} nodes, ${layout.edges.length} edges`}>
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="arrow" />
            </marker>
          </defs>
          <g transform={`translate(${PAD},${PAD})`}>
            {Number.isFinite(loneTop) && (
              <text class="lone-label" x={0} y={loneTop - 12}>
                {layout.layers ? 'No calls to or from other nodes in this range:' : 'No calls between nodes in this range; nodes seen:'}
              </text>
            )}
            {layout.edges.map(({ edge: e, back }) => {
              const s = pos.get(e.source)!;
              const t = pos.get(e.target)!;
              let d: string;
              let lx: number;
              let ly: number;
              if (e.source === e.target) {
                d = `M${s.x + NW - 30},${s.y + NH} c0,40 60,40 30,-${NH / 2}`;
                lx = s.x + NW;
                ly = s.y + NH + 30;
              } else if (back) {
                const x1 = s.x + NW / 2;
                const y1 = s.y + NH;
                const x2 = t.x + NW / 2;
                const y2 = t.y + NH;
                const dip = Math.max(y1, y2) + 50;
                d = `M${x1},${y1} C${x1},${dip} ${x2},${dip} ${x2},${y2}`;
                lx = (x1 + x2) / 2;
                ly = dip - 10;
              } else {
                const x1 = s.x + NW;
                const y1 = s.y + NH / 2;
                const x2 = t.x;
                const y2 = t.y + NH / 2;
                const mx = (x1 + x2) / 2;
                d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
                lx = mx;
                ly = (y1 + y2) / 2 - 6;
              }
              const er = e.errorRate ?? 0;
              const w = 1.5 + 4 * Math.sqrt((e.ratePerSecond ?? 0) / maxRate);
              const faded = focus && e.source !== focus && e.target !== focus;
              const label = `${e.source} → ${e.target}: ${rateLabel(e)}, ${formatPercent(er)} errors, p50 ${fmtMs(e.p50Ms)}, p90 ${fmtMs(e.p90Ms)}, p99 ${fmtMs(e.p99Ms)}`;
              return (
                <g class={`edge${er >= 0.05 ? ' bad' : er > 0 ? ' some-errors' : ''}${faded ? ' faded' : ''}`} tabIndex={0} role="link" aria-label={`${label}. Search these calls.`} onClick={() => search(edgeQuery(e))} onKeyDown={key(() => search(edgeQuery(e)))} data-edge={`${e.source}>${e.target}`}>
                  <title>{label}</title>
                  <path class="edge-hit" d={d} />
                  <path class="edge-line" d={d} style={{ strokeWidth: w }} marker-end="url(#arrow)" />
                  <text class="edge-label" x={lx} y={ly} text-anchor="middle">
                    {rateLabel(e)}
                    {er > 0 ? ` · ${formatPercent(er)} err` : ''} · p90 {fmtMs(e.p90Ms)}
                  </text>
                </g>
              );
            })}
            {layout.nodes.map((p) => {
              const n = p.node;
              const er = n.calls ? (n.errors ?? 0) / n.calls : 0;
              const faded = focus && focus !== n.id && !layout.edges.some((e) => (e.edge.source === focus && e.edge.target === n.id) || (e.edge.target === focus && e.edge.source === n.id));
              return (
                <g class={`node type-${n.type}${faded ? ' faded' : ''}`} tabIndex={0} role="link" aria-label={`${n.type} ${n.id}: ${formatCount(n.calls ?? 0)} calls, ${formatPercent(er)} errors. Search its traces.`} onClick={() => search(nodeQuery(n))} onKeyDown={key(() => search(nodeQuery(n)))} data-node={n.id}>
                  <title>{`${n.id} (${n.type})`}</title>
                  {nodeShape(p, focus === n.id)}
                  <text class="node-label" x={p.x + NW / 2} y={p.y + 24} text-anchor="middle">
                    {n.id.length > 22 ? `${n.id.slice(0, 21)}…` : n.id}
                  </text>
                  <text class="node-sub" x={p.x + NW / 2} y={p.y + 42} text-anchor="middle">
                    {n.type !== 'service' ? `${n.type} · ` : ''}
                    {formatCount(n.calls ?? 0)} calls{er > 0 ? ` · ${formatPercent(er)} err` : ''}
                  </text>
                </g>
              );
            })}
          </g>
        </svg>
      </div>
      <table class="edges-table" data-testid="edges-table">
        <caption>Calls between nodes</caption>
        <thead>
          <tr>
            <th scope="col">From</th>
            <th scope="col">To</th>
            <th scope="col">Type</th>
            <th scope="col" class="num">
              Calls
            </th>
            <th scope="col" class="num">
              Rate
            </th>
            <th scope="col" class="num">
              Errors
            </th>
            <th scope="col" class="num">
              p50
            </th>
            <th scope="col" class="num">
              p90
            </th>
            <th scope="col" class="num">
              p99
            </th>
          </tr>
        </thead>
        <tbody>
          {layout.edges.map(({ edge: e }) => (
            <tr>
              <td>
                <a href={href('map', { ...searchTime, focus: e.source })}>{e.source}</a>
              </td>
              <td>
                <a href={href('map', { ...searchTime, focus: e.target })}>{e.target}</a>
              </td>
              <td>{e.connectionType || 'service'}</td>
              <td class="num">
                <a href={href('search', { q: edgeQuery(e), ...searchTime })}>{formatCount(e.calls ?? 0)}</a>
              </td>
              <td class="num">{formatRate(e.ratePerSecond ?? 0)}</td>
              <td class={`num${(e.errorRate ?? 0) > 0 ? ' err' : ''}`}>{formatPercent(e.errorRate ?? 0)}</td>
              <td class="num">{fmtMs(e.p50Ms)}</td>
              <td class="num">{fmtMs(e.p90Ms)}</td>
              <td class="num">{fmtMs(e.p99Ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** rateLabel shows the request rate, or the number of calls when the rate rounds to nothing. */
function rateLabel(e: GraphEdge): string {
  const r = e.ratePerSecond ?? 0;
  if (r * 3600 < 0.05 && e.calls) return `${formatCount(e.calls)} ${e.calls === 1 ? 'call' : 'calls'}`;
  return formatRate(r);
}

function fmtMs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 10) return `${Math.round(v)} ms`;
  return `${v.toFixed(1)} ms`;
}
