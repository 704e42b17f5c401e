// The time range picker: presets ("last 1h") or a custom start and end.
// Its value lives in the URL: since=1h, or start= and end= (RFC 3339).

export const presets = ['5m', '15m', '1h', '6h', '24h', '7d'];

function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(/^\d+$/.test(iso) ? Number(iso) * 1000 : iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(v: string): string {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** sinceToGo converts a preset to a Go duration the API takes ("7d" is 168h). */
export function sinceToGo(s: string): string {
  const m = /^(\d+)d$/.exec(s);
  return m ? `${Number(m[1]) * 24}h` : s;
}

export interface TimeValue {
  since: string;
  start: string;
  end: string;
}

/**
 * timeFromQuery reads the time range of a page's URL: the picker's value,
 * the API's parameters (since as a Go duration) and the parameters to pass
 * on in links to other pages.
 */
export function timeFromQuery(q: URLSearchParams, defSince = '1h'): { value: TimeValue; api: Record<string, string>; link: Record<string, string | undefined> } {
  const value = { since: q.get('since') ?? '', start: q.get('start') ?? '', end: q.get('end') ?? '' };
  const custom = !!(value.start || value.end);
  const api: Record<string, string> = {};
  if (custom) {
    if (value.start) api.start = value.start;
    if (value.end) api.end = value.end;
  } else api.since = sinceToGo(value.since || defSince);
  const link = custom ? { start: value.start || undefined, end: value.end || undefined } : { since: value.since || (defSince !== '1h' ? defSince : undefined) };
  return { value, api, link };
}

export function TimeRange({ value, onChange, id = 'time', def = '1h' }: { value: TimeValue; onChange: (v: TimeValue) => void; id?: string; def?: string }) {
  const custom = !!(value.start || value.end);
  return (
    <div class="time-range" role="group" aria-label="Time range">
      <label for={`${id}-range`}>Time range</label>
      <select
        id={`${id}-range`}
        value={custom ? 'custom' : value.since || def}
        onChange={(e) => {
          const v = (e.target as HTMLSelectElement).value;
          if (v === 'custom') {
            const end = new Date();
            const start = new Date(end.getTime() - 3600e3);
            onChange({ since: '', start: start.toISOString(), end: end.toISOString() });
          } else onChange({ since: v, start: '', end: '' });
        }}
      >
        {(presets.includes(value.since || def) ? presets : [...presets, value.since || def]).map((p) => (
          <option value={p}>Last {p}</option>
        ))}
        <option value="custom">Custom…</option>
      </select>
      {custom && (
        <>
          <input type="datetime-local" aria-label="Start" value={toLocalInput(value.start)} onChange={(e) => onChange({ ...value, since: '', start: fromLocalInput((e.target as HTMLInputElement).value) })} />
          <span aria-hidden="true">–</span>
          <input type="datetime-local" aria-label="End" value={toLocalInput(value.end)} onChange={(e) => onChange({ ...value, since: '', end: fromLocalInput((e.target as HTMLInputElement).value) })} />
        </>
      )}
    </div>
  );
}
