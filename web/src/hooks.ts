import type { RefObject } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** useSize tracks an element's content size. */
export function useSize(ref: RefObject<HTMLElement | null>): { width: number; height: number } {
  const [size, setSize] = useState({ width: 0, height: 0 });
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const update = () => setSize((s) => (s.width === el.clientWidth && s.height === el.clientHeight ? s : { width: el.clientWidth, height: el.clientHeight }));
    update();
    const ro = new ResizeObserver(update);
    ro.observe(el);
    return () => ro.disconnect();
  }, [ref.current]);
  return size;
}

/** useDocumentTitle sets the tab's title while the page shows. */
export function useDocumentTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · clew` : 'clew';
  }, [title]);
}
