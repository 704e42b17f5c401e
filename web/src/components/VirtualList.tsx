// A list that renders only the rows in view: fixed row height, any number
// of rows.

import type { VNode } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { useSize } from '../hooks';

export function VirtualList({ count, rowHeight, render, label, testId }: { count: number; rowHeight: number; render: (i: number, style: Record<string, string>) => VNode; label: string; testId?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const { height } = useSize(ref);
  const [top, setTop] = useState(0);
  const frame = useRef(0);
  const first = Math.max(0, Math.floor(top / rowHeight) - 10);
  const last = Math.min(count, first + Math.ceil((height || 800) / rowHeight) + 20);
  const items: VNode[] = [];
  for (let i = first; i < last; i++) items.push(render(i, { transform: `translateY(${i * rowHeight}px)`, height: `${rowHeight}px` }));
  return (
    <div
      class="vlist"
      ref={ref}
      tabIndex={0}
      role="list"
      aria-label={label}
      data-testid={testId}
      onScroll={() => {
        if (frame.current) return;
        frame.current = requestAnimationFrame(() => {
          frame.current = 0;
          if (ref.current) setTop(ref.current.scrollTop);
        });
      }}
    >
      <div class="vlist-spacer" style={{ height: `${count * rowHeight}px` }}>
        {items}
      </div>
    </div>
  );
}
