// Loading, error and empty states: every view shows one of them rather
// than a blank area.

import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ApiError } from '../api';

export function Loading({ label = 'Loading', since, onCancel }: { label?: string; since?: number; onCancel?: () => void }) {
  const [now, setNow] = useState(performance.now());
  useEffect(() => {
    const t = setInterval(() => setNow(performance.now()), 500);
    return () => clearInterval(t);
  }, []);
  const secs = since !== undefined ? (now - since) / 1000 : 0;
  const slow = secs >= 3;
  return (
    <div class={`state state-loading${slow ? ' slow' : ''}`} role="status" aria-live="polite" data-state="loading">
      <span class="spinner" aria-hidden="true" />
      <div>
        <div>{label}…</div>
        {slow && (
          <div class="muted">
            The server is slow to answer ({Math.floor(secs)} s).{' '}
            {onCancel && (
              <button type="button" class="link" onClick={onCancel}>
                Cancel
              </button>
            )}
          </div>
        )}
      </div>
    </div>
  );
}

const titles: Record<string, string> = {
  network: 'clew is not reachable',
  timeout: 'The server is too slow',
  parse: 'Unexpected answer from the server',
};

export function ErrorState({ error, onRetry, title }: { error: ApiError; onRetry?: () => void; title?: string }) {
  const t = title ?? titles[error.kind] ?? (error.status === 404 ? 'Not found' : error.status >= 500 ? `Server error (${error.status})` : `Request refused (${error.status})`);
  return (
    <div class={`state state-error kind-${error.kind}`} role="alert" data-state="error" data-error-kind={error.kind} data-status={error.status || undefined}>
      <div class="state-title">{t}</div>
      <div class="state-message">{error.message}</div>
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="state state-empty" data-state="empty">
      <div class="state-title">{title}</div>
      {children && <div class="muted">{children}</div>}
    </div>
  );
}

/** Notes shows what an analysis answer says about itself: partial, and why. */
export function Notes({ partial, notes, label = 'Partial' }: { partial?: boolean; notes?: string[] | null; label?: string }) {
  const list = (notes ?? []).filter(Boolean);
  if (!partial && list.length === 0) return null;
  return (
    <div class={`banner ${partial ? 'warn' : 'info'} notes`} role="status" data-testid="notes">
      {partial && <strong>{label}: </strong>}
      {list.length === 1 ? (
        list[0]
      ) : (
        <ul>
          {list.map((n) => (
            <li>{n}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
