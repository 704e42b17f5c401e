// A small router over the History API. The URL is the state of every
// view: pages read their parameters from it and write changes back to it,
// so any view can be bookmarked, shared and restored.

import { useEffect, useState } from 'preact/hooks';

/** BASE is where clew serves the app ("/ui/"). */
export const BASE: string = import.meta.env.BASE_URL ?? '/ui/';

export interface Location {
  /** path below BASE, without leading slash: "search", "trace/abc" */
  path: string;
  query: URLSearchParams;
}

function read(): Location {
  let p = window.location.pathname;
  if (p.startsWith(BASE)) p = p.slice(BASE.length);
  else if (p + '/' === BASE) p = '';
  return { path: decodeURIComponent(p.replace(/\/+$/, '')), query: new URLSearchParams(window.location.search) };
}

const listeners = new Set<() => void>();
function notify() {
  for (const l of listeners) l();
}
window.addEventListener('popstate', notify);

/** href builds an app URL from a path below BASE and query parameters (empty values left out). */
export function href(path: string, params: Record<string, string | number | undefined | null> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return BASE + path.replace(/^\/+/, '') + (s ? `?${s}` : '');
}

/** navigate goes to an app URL (as href builds), adding a history entry unless replace. */
export function navigate(url: string, opts: { replace?: boolean } = {}) {
  const cur = window.location.pathname + window.location.search;
  if (url === cur) return;
  if (opts.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  notify();
}

/** setQuery changes some query parameters of the current URL (null or '' removes one). */
export function setQuery(updates: Record<string, string | number | undefined | null>, opts: { replace?: boolean } = { replace: true }) {
  const q = new URLSearchParams(window.location.search);
  for (const [k, v] of Object.entries(updates)) {
    if (v === undefined || v === null || v === '') q.delete(k);
    else q.set(k, String(v));
  }
  const s = q.toString();
  navigate(window.location.pathname + (s ? `?${s}` : ''), opts);
}

/** useLocation re-renders the caller when the URL changes. */
export function useLocation(): Location {
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const l = () => setLoc(read());
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return loc;
}

/** interceptLinks turns clicks on same-app links into history navigation. */
export function interceptLinks() {
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download') || a.origin !== window.location.origin) return;
    if (!a.pathname.startsWith(BASE) && a.pathname + '/' !== BASE) return;
    e.preventDefault();
    navigate(a.pathname + a.search);
  });
}
