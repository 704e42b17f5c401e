// States shared by the pages that read the detector (anomalies,
// deployments): "detection is off" (503), and when it last evaluated.

import type { ApiError } from '../api';
import { formatRelative, formatTime } from '../lib/format';
import { ErrorState } from './States';

export function DetectError({ error, onRetry }: { error: ApiError; onRetry: () => void }) {
  if (error.status === 503) {
    return (
      <div class="state state-empty" data-state="detection-off" role="status">
        <div class="state-title">Detection is off</div>
        <div class="state-message">{error.message}</div>
        <p>Baselines, anomalies and deployments need span metrics and the detector (the <code>spanmetrics:</code> and <code>detect:</code> settings, see configuration.md).</p>
        <button type="button" onClick={onRetry}>
          Retry
        </button>
      </div>
    );
  }
  if (error.status === 404) return <ErrorState error={error} onRetry={onRetry} title="Not available on this server" />;
  return <ErrorState error={error} onRetry={onRetry} />;
}

export function EvaluatedNote({ at, error }: { at: string | null | undefined; error?: string }) {
  const t = at ? Date.parse(at) : NaN;
  return (
    <>
      <span class="muted small" data-testid="evaluated-at" title={Number.isFinite(t) ? formatTime(t) : undefined}>
        {Number.isFinite(t) ? `Last evaluated ${formatRelative(t)}` : 'Not evaluated yet: the detector runs every few seconds after start'}
      </span>
      {error && (
        <div class="banner warn" role="status">
          The last evaluation failed: {error}
        </div>
      )}
    </>
  );
}
