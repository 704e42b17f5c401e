// "What distinguishes these?": for the spans a search's TraceQL query
// matches, GET /api/v1/attributes/rank counts every attribute value in
// them and in a baseline (by default the other spans of their operations;
// or a TraceQL query) and lists the values significantly more common in
// the selection, with both proportions. A value adds itself to the query.

import { useEffect, useState } from 'preact/hooks';
import { qs, useFetch } from '../api';
import type { AttributeRanking, RankedAttribute } from '../apitypes';
import { addCondition, formatPValue, formatShare, rankCondition, splitRankKey } from '../lib/analysis';
import { formatCount } from '../lib/format';
import { href, setQuery } from '../router';
import { Empty, ErrorState, Loading, Notes } from './States';

export function AttrRankPanel({ q, time, baseline, link }: { q: string; time: Record<string, string>; baseline: string; link: Record<string, string | undefined> }) {
  const { state, retry, cancel } = useFetch<AttributeRanking>(`/api/v1/attributes/rank?${qs({ q, baseline, ...time })}`, { timeoutMs: 60_000 });
  const [draft, setDraft] = useState(baseline);
  useEffect(() => setDraft(baseline), [baseline]);
  return (
    <section class="rank-panel" aria-labelledby="rank-title" data-testid="attr-rank">
      <div class="section-head">
        <h2 id="rank-title">What distinguishes these spans?</h2>
        <form
          class="rank-baseline"
          onSubmit={(e) => {
            e.preventDefault();
            setQuery({ rankBase: draft.trim() || null });
          }}
        >
          <label>
            Baseline{' '}
            <input value={draft} onInput={(e) => setDraft((e.target as HTMLInputElement).value)} placeholder="the other spans of their operations" aria-label="Baseline TraceQL query (empty: the other spans of the selection's operations)" class="mono" size={38} />
          </label>
          <button type="submit">Compare</button>
        </form>
        <div class="spacer" />
        <button type="button" class="icon" onClick={() => setQuery({ rank: null, rankBase: null })} aria-label="Close the ranking">
          ×
        </button>
      </div>
      {state.status === 'loading' && <Loading label="Counting attribute values" since={state.since} onCancel={cancel} />}
      {state.status === 'error' && <ErrorState error={state.error} onRetry={retry} title={state.error.status === 400 ? 'The ranking was refused' : undefined} />}
      {state.status === 'ok' && <Ranking r={state.data} q={q} link={link} />}
    </section>
  );
}

function Ranking({ r, q, link }: { r: AttributeRanking; q: string; link: Record<string, string | undefined> }) {
  return (
    <>
      <p class="small rank-sides">
        <span class="side sel">
          <span class="swatch" aria-hidden="true" /> Selection: {formatCount(r.selection?.spans ?? 0)} spans in {formatCount(r.selection?.traces ?? 0)} traces
        </span>
        <span class="side base">
          <span class="swatch" aria-hidden="true" /> Baseline: {formatCount(r.baseline?.spans ?? 0)} spans in {formatCount(r.baseline?.traces ?? 0)} traces <span class="muted">({r.baseline?.query})</span>
        </span>
        <span class="muted">{r.tested} values tested</span>
      </p>
      {r.attributes?.length ? (
        <div class="table-scroll">
          <table class="red-table rank-table" data-testid="rank-table">
            <thead>
              <tr>
                <th scope="col">Attribute</th>
                <th scope="col">Value</th>
                <th scope="col">In the selection vs the baseline</th>
                <th scope="col" class="num">
                  Difference
                </th>
                <th scope="col">
                  <span class="visually-hidden">Significance</span>
                </th>
                <th scope="col">
                  <span class="visually-hidden">Search</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {r.attributes.map((a) => (
                <RankRow a={a} q={q} link={link} />
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty title="No attribute sets these spans apart">No value is significantly more common in the selection than in the baseline ({r.tested} values tested). Try a narrower selection, or another baseline.</Empty>
      )}
      {r.skippedKeys?.length ? (
        <p class="muted small">
          Not compared (identifiers, too many values): {r.skippedKeys.slice(0, 20).join(', ')}
          {r.skippedKeys.length > 20 ? ` and ${r.skippedKeys.length - 20} more` : ''}
        </p>
      ) : null}
      <Notes partial={r.partial} notes={r.notes} />
    </>
  );
}

function RankRow({ a, q, link }: { a: RankedAttribute; q: string; link: Record<string, string | undefined> }) {
  const k = splitRankKey(a.key);
  const cond = rankCondition(a);
  return (
    <tr data-key={a.key} data-value={a.value}>
      <th scope="row">
        <span class={`scope scope-${k.scope}`}>{k.scope === 'intrinsic' ? 'span' : k.scope}</span> <span class="mono">{k.name}</span>
      </th>
      <td class="mono">{a.missing ? <em class="muted">(not set)</em> : a.value}</td>
      <td>
        <div class="share-bars" role="img" aria-label={`${formatShare(a.selectionShare)} of the selection (${a.selectionCount} spans), ${formatShare(a.baselineShare)} of the baseline (${a.baselineCount} spans)`}>
          <span class="share sel" style={{ width: `${a.selectionShare * 100}%` }} />
          <span class="share-label">{formatShare(a.selectionShare)}</span>
          <span class="share base" style={{ width: `${a.baselineShare * 100}%` }} />
          <span class="share-label muted">{formatShare(a.baselineShare)}</span>
        </div>
      </td>
      <td class="num">+{Math.round(a.diff * 100)} pts</td>
      <td class="muted small">{formatPValue(a.pValue)}</td>
      <td>{cond && <a href={href('search', { q: addCondition(q, cond), mode: 'traceql', ...link })}>Add to query</a>}</td>
    </tr>
  );
}
