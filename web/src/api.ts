// The API client: clew's native API (/api/v1) and its Tempo API (/tempo)
// on the same origin. Every failure becomes an ApiError that says what
// went wrong in words a person can act on.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export type ErrorKind = 'http' | 'network' | 'timeout' | 'parse';

export interface ErrorPosition {
  start: number;
  end: number;
  line: number;
  column: number;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly kind: ErrorKind,
    readonly url: string,
    readonly status = 0,
    readonly position?: ErrorPosition,
  ) {
    super(message);
  }
}

export const DEFAULT_TIMEOUT_MS = 30_000;

/** The tenant (X-Scope-OrgID) and token the UI sends, set from the top bar. The token stays in this tab's session storage only. */
export const TENANT_KEY = 'clew-tenant';
export const TOKEN_KEY = 'clew-token';

/** requestHeaders are the headers of every API call: the tenant and the bearer token when set. */
export function requestHeaders(): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json' };
  const tenant = localStorage.getItem(TENANT_KEY);
  if (tenant) h['X-Scope-OrgID'] = tenant;
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h['Authorization'] = `Bearer ${token}`;
  return h;
}

/** getJSON fetches url and decodes its JSON, or throws an ApiError (an AbortError when signal aborts). */
export async function getJSON<T>(url: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<T> {
  const ctl = new AbortController();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, timeoutMs);
  const onAbort = () => ctl.abort();
  opts.signal?.addEventListener('abort', onAbort);
  try {
    let resp: Response;
    try {
      resp = await fetch(url, { signal: ctl.signal, headers: requestHeaders() });
    } catch (e) {
      if (timedOut) throw new ApiError(`The server did not answer within ${Math.round(timeoutMs / 1000)} s. It may be overloaded, or the query too broad: narrow the time range or add conditions.`, 'timeout', url);
      if (opts.signal?.aborted) throw e;
      throw new ApiError(`Cannot reach clew at ${window.location.origin}: the server may be down or restarting. (${(e as Error).message})`, 'network', url);
    }
    const text = await resp.text().catch(() => '');
    if (!resp.ok) {
      let msg = text.trim();
      let position: ErrorPosition | undefined;
      try {
        const j = JSON.parse(text);
        if (j && typeof j.error === 'string') msg = j.error;
        else if (j && typeof j.error?.message === 'string') msg = j.error.message;
        if (j && j.position) position = j.position;
      } catch {
        /* plain text, as the Tempo API answers */
      }
      if (!msg) msg = `${resp.status} ${resp.statusText}`;
      if (resp.status === 401 || resp.status === 403) msg += ' (set the tenant and token with the Tenant button in the top bar)';
      throw new ApiError(msg, 'http', url, resp.status, position);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(`The server's answer is not JSON (${text.slice(0, 80)}…)`, 'parse', url, resp.status);
    }
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

export type FetchState<T> =
  | { status: 'idle' }
  | { status: 'loading'; since: number }
  | { status: 'ok'; data: T; ms: number }
  | { status: 'error'; error: ApiError };

/**
 * useFetch loads url (nothing when null) and reloads it when url changes;
 * retry loads it again and cancel stops a slow request.
 */
export function useFetch<T>(url: string | null, opts: { timeoutMs?: number } = {}): { state: FetchState<T>; retry: () => void; cancel: () => void } {
  const [state, setState] = useState<FetchState<T>>(url ? { status: 'loading', since: performance.now() } : { status: 'idle' });
  const [nonce, setNonce] = useState(0);
  const ctl = useRef<AbortController | null>(null);
  useEffect(() => {
    if (!url) {
      setState({ status: 'idle' });
      return;
    }
    const c = new AbortController();
    ctl.current = c;
    const t0 = performance.now();
    setState({ status: 'loading', since: t0 });
    getJSON<T>(url, { signal: c.signal, timeoutMs: opts.timeoutMs })
      .then((data) => {
        if (!c.signal.aborted) setState({ status: 'ok', data, ms: performance.now() - t0 });
      })
      .catch((e) => {
        if (c.signal.aborted && !(e instanceof ApiError)) return;
        setState({ status: 'error', error: e instanceof ApiError ? e : new ApiError(String(e), 'network', url) });
      });
    return () => c.abort();
  }, [url, nonce]);
  const retry = useCallback(() => setNonce((n) => n + 1), []);
  const cancel = useCallback(() => {
    if (!ctl.current) return;
    ctl.current.abort();
    setState({ status: 'error', error: new ApiError('Cancelled: the server was taking too long. Narrow the time range or add conditions, then retry.', 'timeout', url ?? '') });
  }, [url]);
  return { state, retry, cancel };
}

// --- Shapes of the answers -------------------------------------------------

export interface ServiceStat {
  name: string;
  spanCount: number;
  errorCount: number;
}

export interface TraceSummary {
  traceID: string;
  rootServiceName: string;
  rootName: string;
  startTimeUnixNano: string;
  durationNanos: string;
  spanCount: number;
  errorCount: number;
  services: ServiceStat[];
}

export interface SearchResponse {
  traces: TraceSummary[];
  total: number;
  nextCursor?: string;
  warning?: string;
  totalIsLowerBound?: boolean;
}

export interface TagScopes {
  scopes: { name: string; tags: string[] }[];
}

export interface TagValues {
  tagValues: { type: string; value: string }[];
}

export interface ServiceGraph {
  start: string;
  end: string;
  nodes: { id: string; type: string; calls: number; errors: number }[];
  edges: {
    source: string;
    target: string;
    connectionType: string;
    calls: number;
    errors: number;
    ratePerSecond: number;
    errorRate: number;
    p50Ms: number;
    p90Ms: number;
    p99Ms: number;
  }[];
}

/** timeParams are the time range parameters of the URL passed on to the API. */
export function timeParams(q: URLSearchParams, defSince = '1h'): Record<string, string> {
  const start = q.get('start');
  const end = q.get('end');
  if (start || end) {
    const out: Record<string, string> = {};
    if (start) out.start = start;
    if (end) out.end = end;
    return out;
  }
  return { since: q.get('since') || defSince };
}

export function qs(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  return q.toString();
}
