// An attribute value, truncated when huge, with a way to see it whole.

import { useState } from 'preact/hooks';
import { formatCount } from '../lib/format';

export const TRUNCATE_CHARS = 300;
const TRUNCATE_LINES = 8;

export function AttrValue({ value, type, pre = false }: { value: string; type?: string; pre?: boolean }) {
  const [open, setOpen] = useState(false);
  const lines = value.split('\n');
  const long = value.length > TRUNCATE_CHARS || lines.length > TRUNCATE_LINES;
  let shown = value;
  if (long && !open) {
    shown = lines.length > TRUNCATE_LINES ? lines.slice(0, TRUNCATE_LINES).join('\n') : value;
    if (shown.length > TRUNCATE_CHARS) shown = shown.slice(0, TRUNCATE_CHARS);
  }
  const Tag = pre || value.includes('\n') ? 'pre' : 'span';
  return (
    <span class={`attr-value type-${type ?? 'string'}`}>
      <Tag class="attr-text">
        {shown}
        {long && !open && '…'}
      </Tag>
      {long && (
        <button type="button" class="link expand" aria-expanded={open} onClick={() => setOpen(!open)}>
          {open ? 'Show less' : `Show all (${formatCount(value.length)} characters)`}
        </button>
      )}
    </span>
  );
}
