import { expect, test } from 'vitest';
import { timeFromQuery } from './TimeRange';

test('timeFromQuery: presets, the page default, and custom ranges', () => {
  expect(timeFromQuery(new URLSearchParams(''))).toEqual({ value: { since: '', start: '', end: '' }, api: { since: '1h' }, link: { since: undefined } });
  expect(timeFromQuery(new URLSearchParams(''), '24h')).toEqual({ value: { since: '', start: '', end: '' }, api: { since: '24h' }, link: { since: '24h' } });
  expect(timeFromQuery(new URLSearchParams('since=7d')).api).toEqual({ since: '168h' });
  expect(timeFromQuery(new URLSearchParams('since=7d')).link).toEqual({ since: '7d' });
  const custom = timeFromQuery(new URLSearchParams('since=1h&start=2026-03-02T10:00:00Z&end=2026-03-02T11:00:00Z'));
  expect(custom.api).toEqual({ start: '2026-03-02T10:00:00Z', end: '2026-03-02T11:00:00Z' });
  expect(custom.link).toEqual({ start: '2026-03-02T10:00:00Z', end: '2026-03-02T11:00:00Z' });
  expect(timeFromQuery(new URLSearchParams('start=2026-03-02T10:00:00Z')).api).toEqual({ start: '2026-03-02T10:00:00Z' });
});
