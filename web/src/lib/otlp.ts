// The trace model of the UI, read from OTLP JSON (TracesData, as
// GET /api/v1/traces/{id} answers). Times are kept exact: nanosecond
// timestamps do not fit a float64, so each is split into seconds and
// nanoseconds and stored relative to the trace's earliest start.

export type AttrType = 'string' | 'int' | 'double' | 'bool' | 'bytes' | 'array' | 'kvlist' | 'empty';

export interface Attr {
  key: string;
  type: AttrType;
  /** value rendered as text (arrays and maps as JSON) */
  value: string;
}

export interface SpanEvent {
  /** ns since the trace start */
  time: number;
  name: string;
  attrs: Attr[];
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  traceState: string;
  attrs: Attr[];
}

export interface Resource {
  service: string;
  attrs: Attr[];
}

export interface Scope {
  name: string;
  version: string;
  attrs: Attr[];
}

export const StatusCode = { Unset: 0, Ok: 1, Error: 2 } as const;
export type StatusCode = (typeof StatusCode)[keyof typeof StatusCode];

export interface Span {
  /** index in Trace.spans */
  idx: number;
  spanId: string;
  parentId: string;
  name: string;
  kind: number;
  /** ns since the trace's earliest start */
  start: number;
  end: number;
  /** end - start, at least 0 */
  duration: number;
  service: string;
  resource: Resource;
  scope: Scope;
  attrs: Attr[];
  events: SpanEvent[];
  links: SpanLink[];
  status: StatusCode;
  statusMessage: string;
  traceState: string;
  dropped: { attrs: number; events: number; links: number };
}

export interface Trace {
  traceId: string;
  spans: Span[];
  /** Unix time of the earliest span start, in ms (for display) */
  startMs: number;
  /** the earliest start split in seconds and nanoseconds, for exact offsets */
  baseSec: number;
  baseNs: number;
  /** latest end minus earliest start, in ns */
  duration: number;
}

export const kindNames = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

export function kindName(k: number): string {
  return kindNames[k] ?? `kind ${k}`;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

/** splitNanos splits a Unix-nanosecond decimal string (or number) into seconds and nanoseconds. */
export function splitNanos(v: unknown): [number, number] {
  if (typeof v === 'number') {
    const sec = Math.floor(v / 1e9);
    return [sec, Math.round(v - sec * 1e9)];
  }
  if (typeof v !== 'string' || v === '') return [0, 0];
  const s = v.trim();
  if (s.length <= 9) return [0, Number(s) || 0];
  return [Number(s.slice(0, s.length - 9)) || 0, Number(s.slice(s.length - 9)) || 0];
}

function anyToText(v: Json): { type: AttrType; value: string } {
  if (v == null || typeof v !== 'object') return { type: 'empty', value: '' };
  if ('stringValue' in v) return { type: 'string', value: String(v.stringValue ?? '') };
  if ('intValue' in v) return { type: 'int', value: String(v.intValue) };
  if ('doubleValue' in v) return { type: 'double', value: String(v.doubleValue) };
  if ('boolValue' in v) return { type: 'bool', value: String(Boolean(v.boolValue)) };
  if ('bytesValue' in v) return { type: 'bytes', value: String(v.bytesValue) };
  if ('arrayValue' in v) return { type: 'array', value: JSON.stringify(anyToPlain(v)) };
  if ('kvlistValue' in v) return { type: 'kvlist', value: JSON.stringify(anyToPlain(v)) };
  return { type: 'empty', value: '' };
}

function anyToPlain(v: Json): unknown {
  if (v == null || typeof v !== 'object') return null;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return (v.arrayValue?.values ?? []).map(anyToPlain);
  if ('kvlistValue' in v) {
    const o: Record<string, unknown> = {};
    for (const kv of v.kvlistValue?.values ?? []) o[kv.key] = anyToPlain(kv.value);
    return o;
  }
  return null;
}

export function parseAttrs(list: Json): Attr[] {
  if (!Array.isArray(list)) return [];
  return list.map((kv: Json) => ({ key: String(kv?.key ?? ''), ...anyToText(kv?.value) }));
}

/** hexId normalizes an OTLP JSON ID: lowercase hex (base64 IDs, as some senders write, are converted). */
export function hexId(v: unknown): string {
  if (typeof v !== 'string') return '';
  if (/^[0-9a-fA-F]*$/.test(v)) return v.toLowerCase();
  try {
    const bin = atob(v);
    let out = '';
    for (let i = 0; i < bin.length; i++) out += bin.charCodeAt(i).toString(16).padStart(2, '0');
    return out;
  } catch {
    return v;
  }
}

/** parseTrace reads OTLP JSON TracesData into the UI's model. */
export function parseTrace(traceId: string, data: Json): Trace {
  const raw: { sec: number; ns: number; esec: number; ens: number; sp: Json; res: Resource; scope: Scope }[] = [];
  let baseSec = Infinity;
  let baseNs = 0;
  for (const rs of data?.resourceSpans ?? []) {
    const rattrs = parseAttrs(rs?.resource?.attributes);
    const svc = rattrs.find((a) => a.key === 'service.name');
    const res: Resource = { service: svc ? svc.value : '<unknown service>', attrs: rattrs };
    for (const ss of rs?.scopeSpans ?? rs?.instrumentationLibrarySpans ?? []) {
      const sc = ss?.scope ?? ss?.instrumentationLibrary ?? {};
      const scope: Scope = { name: String(sc.name ?? ''), version: String(sc.version ?? ''), attrs: parseAttrs(sc.attributes) };
      for (const sp of ss?.spans ?? []) {
        const [sec, ns] = splitNanos(sp.startTimeUnixNano);
        const [esec, ens] = splitNanos(sp.endTimeUnixNano);
        if (sec < baseSec || (sec === baseSec && ns < baseNs)) {
          baseSec = sec;
          baseNs = ns;
        }
        raw.push({ sec, ns, esec, ens, sp, res, scope });
      }
    }
  }
  if (!Number.isFinite(baseSec)) baseSec = 0;
  const rel = (sec: number, ns: number) => (sec - baseSec) * 1e9 + (ns - baseNs);
  const spans: Span[] = raw.map((r, idx) => {
    const start = rel(r.sec, r.ns);
    let end = rel(r.esec, r.ens);
    if (!(end >= start)) end = start;
    const sp = r.sp;
    const code = typeof sp.status?.code === 'string' ? statusFromName(sp.status.code) : Number(sp.status?.code ?? 0);
    return {
      idx,
      spanId: hexId(sp.spanId),
      parentId: hexId(sp.parentSpanId ?? ''),
      name: String(sp.name ?? ''),
      kind: typeof sp.kind === 'string' ? kindFromName(sp.kind) : Number(sp.kind ?? 0),
      start,
      end,
      duration: end - start,
      service: r.res.service,
      resource: r.res,
      scope: r.scope,
      attrs: parseAttrs(sp.attributes),
      events: (sp.events ?? []).map((e: Json) => {
        const [s, n] = splitNanos(e.timeUnixNano);
        return { time: rel(s, n), name: String(e.name ?? ''), attrs: parseAttrs(e.attributes) };
      }),
      links: (sp.links ?? []).map((l: Json) => ({
        traceId: hexId(l.traceId),
        spanId: hexId(l.spanId),
        traceState: String(l.traceState ?? ''),
        attrs: parseAttrs(l.attributes),
      })),
      status: (code === 1 || code === 2 ? code : 0) as StatusCode,
      statusMessage: String(sp.status?.message ?? ''),
      traceState: String(sp.traceState ?? ''),
      dropped: {
        attrs: Number(sp.droppedAttributesCount ?? 0),
        events: Number(sp.droppedEventsCount ?? 0),
        links: Number(sp.droppedLinksCount ?? 0),
      },
    };
  });
  // Start order, as the API returns them; stable for equal starts.
  spans.sort((a, b) => a.start - b.start || a.idx - b.idx);
  spans.forEach((s, i) => (s.idx = i));
  let maxEnd = 0;
  for (const s of spans) maxEnd = Math.max(maxEnd, s.end);
  return { traceId, spans, startMs: baseSec * 1e3 + baseNs / 1e6, baseSec, baseNs, duration: maxEnd };
}

function statusFromName(s: string): StatusCode {
  const u = s.toUpperCase();
  if (u.endsWith('ERROR')) return StatusCode.Error;
  if (u.endsWith('OK')) return StatusCode.Ok;
  return StatusCode.Unset;
}

function kindFromName(s: string): number {
  const i = kindNames.indexOf(s.toLowerCase().replace(/^span_kind_/, ''));
  return i < 0 ? 0 : i;
}

export function isError(s: Span): boolean {
  return s.status === StatusCode.Error;
}
