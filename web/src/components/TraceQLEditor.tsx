// The TraceQL editor: a textarea over a highlighted copy of its text
// (same font and metrics, so the colours sit under the letters), with
// autocomplete of attribute names and values from the Tempo API's tag
// endpoints, and the server's error underlined where its parser stopped.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { getJSON, type TagScopes, type TagValues } from '../api';
import { completionContext, kindValues, quoteString, statusValues, tokenize, type CompletionContext, type QueryErrorPosition } from '../lib/traceql';

interface Suggestion {
  label: string;
  insert: string;
  detail?: string;
}

let tagCache: Promise<string[]> | null = null;
const valueCache = new Map<string, Promise<Suggestion[]>>();

/** loadTags reads every attribute name, scoped as TraceQL writes them. */
function loadTags(): Promise<string[]> {
  if (!tagCache) {
    tagCache = getJSON<TagScopes>('/tempo/api/v2/search/tags', { timeoutMs: 10_000 })
      .then((r) => {
        const out = new Set<string>();
        for (const sc of r.scopes ?? []) {
          for (const t of sc.tags ?? []) {
            if (sc.name === 'intrinsic') out.add(t);
            else {
              out.add(`${sc.name}.${t}`);
              if (sc.name === 'span' || sc.name === 'resource') out.add(`.${t}`);
            }
          }
        }
        return [...out].sort();
      })
      .catch(() => {
        tagCache = null; // try again next time
        return [];
      });
  }
  return tagCache;
}

function loadValues(attr: string): Promise<Suggestion[]> {
  const bare = attr.replace(/^span:/, '');
  if (bare === 'status') return Promise.resolve(statusValues.map((v) => ({ label: v, insert: v, detail: 'status' })));
  if (bare === 'kind') return Promise.resolve(kindValues.map((v) => ({ label: v, insert: v, detail: 'kind' })));
  let p = valueCache.get(attr);
  if (!p) {
    p = getJSON<TagValues>(`/tempo/api/v2/search/tag/${encodeURIComponent(attr)}/values`, { timeoutMs: 10_000 })
      .then((r) =>
        (r.tagValues ?? []).slice(0, 500).map((v) => ({
          label: v.value,
          insert: v.type === 'string' ? quoteString(v.value) : v.value,
          detail: v.type,
        })),
      )
      .catch(() => {
        valueCache.delete(attr);
        return [];
      });
    valueCache.set(attr, p);
  }
  return p;
}

function rank(items: Suggestion[], prefix: string): Suggestion[] {
  const p = prefix.toLowerCase();
  if (!p) return items.slice(0, 50);
  const starts: Suggestion[] = [];
  const contains: Suggestion[] = [];
  for (const it of items) {
    const l = it.label.toLowerCase();
    if (l.startsWith(p)) starts.push(it);
    else if (l.includes(p)) contains.push(it);
  }
  return [...starts, ...contains].filter((s) => s.label !== prefix).slice(0, 50);
}

function Highlighted({ src, error }: { src: string; error: QueryErrorPosition | null }) {
  const parts = useMemo(() => {
    const out: { text: string; cls: string }[] = [];
    for (const t of tokenize(src)) {
      const cls = `tk-${t.type}`;
      if (!error || t.end <= error.start || t.start >= error.end) {
        out.push({ text: t.text, cls });
        continue;
      }
      const a = Math.max(t.start, error.start);
      const b = Math.min(t.end, error.end);
      if (a > t.start) out.push({ text: src.slice(t.start, a), cls });
      out.push({ text: src.slice(a, b), cls: `${cls} tk-err` });
      if (b < t.end) out.push({ text: src.slice(b, t.end), cls });
    }
    if (error && error.start >= src.length) out.push({ text: ' ', cls: 'tk-err' });
    return out;
  }, [src, error]);
  return (
    <>
      {parts.map((p) => (
        <span class={p.cls}>{p.text}</span>
      ))}
      {'\n'}
    </>
  );
}

export interface EditorProps {
  value: string;
  onChange: (v: string) => void;
  onRun: () => void;
  error: { message: string; position: QueryErrorPosition | null } | null;
  id?: string;
}

export function TraceQLEditor({ value, onChange, onRun, error, id = 'traceql' }: EditorProps) {
  const ta = useRef<HTMLTextAreaElement>(null);
  const hl = useRef<HTMLPreElement>(null);
  const [ctx, setCtx] = useState<CompletionContext | null>(null);
  const [items, setItems] = useState<Suggestion[]>([]);
  const [active, setActive] = useState(0);
  const [open, setOpen] = useState(false);
  const [caret, setCaret] = useState(0);
  const req = useRef(0);

  const suggest = (text: string, pos: number, force = false) => {
    const c = completionContext(text, pos);
    setCaret(pos);
    setCtx(c);
    if (!c) {
      setOpen(false);
      return;
    }
    const n = ++req.current;
    const p = c.kind === 'attr' ? loadTags().then((tags) => tags.map((t) => ({ label: t, insert: t }))) : loadValues(c.attr);
    p.then((all) => {
      if (n !== req.current) return;
      const ranked = rank(all, c.prefix);
      setItems(ranked);
      setActive(0);
      setOpen(ranked.length > 0 && (force || c.prefix !== '' || c.kind === 'value' || /[{(]\s*$|&&\s*$|\|\|\s*$/.test(text.slice(0, pos))));
    });
  };

  const accept = (s: Suggestion) => {
    if (!ctx) return;
    let from = ctx.from;
    let to = ctx.to;
    // Replace a whole quoted value being typed, closing quote included.
    if (ctx.kind === 'value' && value[to] === '"' && value[from] === '"') to++;
    const before = value.slice(0, from);
    const after = value.slice(to);
    const sep = /^\s/.test(after) ? '' : ' ';
    const next = before + s.insert + sep + after;
    onChange(next);
    setOpen(false);
    const pos = from + s.insert.length + sep.length;
    requestAnimationFrame(() => {
      ta.current?.setSelectionRange(pos, pos);
      ta.current?.focus();
    });
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (open && items.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        setActive((a) => (a + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        accept(items[active]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        setOpen(false);
        return;
      }
    }
    if (e.key === ' ' && e.ctrlKey) {
      e.preventDefault();
      const t = e.target as HTMLTextAreaElement;
      suggest(t.value, t.selectionStart, true);
      return;
    }
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      setOpen(false);
      onRun();
    }
  };

  const syncScroll = () => {
    if (hl.current && ta.current) {
      hl.current.scrollTop = ta.current.scrollTop;
      hl.current.scrollLeft = ta.current.scrollLeft;
    }
  };
  useEffect(syncScroll, [value]);

  // Where the popup goes: under the caret, in character cells.
  const before = value.slice(0, ctx?.from ?? caret);
  const line = before.split('\n').length - 1;
  const col = before.length - before.lastIndexOf('\n') - 1;
  const rows = Math.min(6, Math.max(2, value.split('\n').length + 1));
  const listId = `${id}-suggestions`;

  return (
    <div class="tql">
      <div class={`tql-editor${error ? ' has-error' : ''}`} style={{ '--rows': rows }}>
        <pre class="tql-highlight" ref={hl} aria-hidden="true">
          <Highlighted src={value} error={error?.position ?? null} />
        </pre>
        <textarea
          id={id}
          ref={ta}
          class="tql-input"
          value={value}
          spellcheck={false}
          autocomplete="off"
          autocapitalize="off"
          rows={rows}
          {...({ role: 'combobox' } as object)}
          aria-label="TraceQL query"
          aria-autocomplete="list"
          aria-expanded={open}
          aria-controls={listId}
          aria-activedescendant={open ? `${listId}-${active}` : undefined}
          aria-invalid={!!error}
          aria-describedby={error ? `${id}-error` : undefined}
          placeholder='{ resource.service.name = "checkout" && status = error }'
          onInput={(e) => {
            const t = e.target as HTMLTextAreaElement;
            onChange(t.value);
            suggest(t.value, t.selectionStart);
          }}
          onKeyDown={onKeyDown}
          onScroll={syncScroll}
          onBlur={() => setTimeout(() => setOpen(false), 150)}
          onClick={(e) => {
            const t = e.target as HTMLTextAreaElement;
            if (open) suggest(t.value, t.selectionStart);
          }}
        />
        {open && items.length > 0 && (
          <ul class="tql-suggest" id={listId} role="listbox" style={{ left: `calc(${col}ch + 0.6rem)`, top: `calc(${line + 1} * 1.5em + 0.5rem)` }}>
            {items.map((s, i) => (
              <li
                id={`${listId}-${i}`}
                role="option"
                aria-selected={i === active}
                class={i === active ? 'active' : ''}
                onMouseDown={(e) => {
                  e.preventDefault();
                  accept(s);
                }}
              >
                <span class="label">{s.label}</span>
                {s.detail && <span class="detail">{s.detail}</span>}
              </li>
            ))}
          </ul>
        )}
      </div>
      {error && (
        <div class="tql-error" id={`${id}-error`} role="alert" data-testid="query-error">
          {error.position && (
            <pre class="tql-caret" aria-hidden="true">
              {caretLine(value, error.position)}
            </pre>
          )}
          <span class="msg">
            {error.position && <strong>Line {error.position.line}, column {error.position.column}: </strong>}
            {error.message}
          </span>
        </div>
      )}
    </div>
  );
}

/** caretLine shows the line of the error with a caret under its column. */
function caretLine(src: string, pos: QueryErrorPosition): string {
  const lineStart = src.lastIndexOf('\n', Math.max(0, pos.start - 1)) + 1;
  let lineEnd = src.indexOf('\n', pos.start);
  if (lineEnd < 0) lineEnd = src.length;
  const text = src.slice(lineStart, lineEnd);
  const pad = [...src.slice(lineStart, pos.start)].map((c) => (c === '\t' ? '\t' : ' ')).join('');
  const width = Math.max(1, Math.min(pos.end, lineEnd) - pos.start);
  return `${text}\n${pad}${'^'.repeat(width)}`;
}
