// A TraceQL tokenizer for syntax highlighting and autocomplete. It never
// fails: anything it does not know becomes an "error" token, so the
// editor highlights every input. The server's parser remains the judge of
// what is valid (its 400 answers carry the position of the error).

export type TokenType = 'ws' | 'punct' | 'op' | 'string' | 'number' | 'duration' | 'keyword' | 'intrinsic' | 'attr' | 'func' | 'ident' | 'error';

export interface Token {
  type: TokenType;
  start: number;
  end: number;
  text: string;
  /** a string without its closing quote */
  open?: boolean;
}

export const intrinsics = [
  'name', 'status', 'statusMessage', 'duration', 'kind', 'rootName', 'rootServiceName', 'traceDuration',
  'nestedSetLeft', 'nestedSetRight', 'nestedSetParent',
  'span:name', 'span:status', 'span:statusMessage', 'span:duration', 'span:kind', 'span:id', 'span:parentID', 'span:childCount',
  'trace:id', 'trace:rootName', 'trace:rootService', 'trace:duration',
  'event:name', 'event:timeSinceStart', 'link:traceID', 'link:spanID', 'instrumentation:name', 'instrumentation:version',
];
const intrinsicSet = new Set(intrinsics);

export const statusValues = ['error', 'ok', 'unset'];
export const kindValues = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
const keywords = new Set(['true', 'false', 'nil', 'with', 'by', 'select', 'coalesce', 'minInt', 'maxInt', ...statusValues, ...kindValues]);
const funcs = new Set([
  'count', 'avg', 'min', 'max', 'sum', 'by', 'select', 'coalesce', 'rate', 'count_over_time', 'min_over_time', 'max_over_time',
  'avg_over_time', 'sum_over_time', 'quantile_over_time', 'histogram_over_time', 'compare', 'topk', 'bottomk',
]);

const ops = ['!>>', '!<<', '&>>', '&<<', '&&', '||', '!=', '=~', '!~', '>=', '<=', '>>', '<<', '!>', '!<', '&>', '&<', '&~', '=', '>', '<', '~', '+', '-', '*', '/', '%', '^', '!'];
export const comparisonOps = new Set(['=', '!=', '=~', '!~', '>', '>=', '<', '<=']);

const unit = '(?:ns|us|µs|ms|s|m|h)';
const numRe = new RegExp(`(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?(?:${unit}(?:\\d+(?:\\.\\d+)?${unit})*)?`, 'y');
const scopedIntrinsicRe = /(?:span|trace|event|link|instrumentation):[A-Za-z]*/y;
const identRe = /[A-Za-z_][A-Za-z0-9_]*/y;
const segRe = /[A-Za-z0-9_\-/@$#]+/y;
const scopes = ['parent.', 'span.', 'resource.', 'event.', 'link.', 'instrumentation.'];

function matchAt(re: RegExp, s: string, i: number): string | null {
  re.lastIndex = i;
  const m = re.exec(s);
  return m ? m[0] : null;
}

/** attrEnd returns where an attribute path starting with "." at i ends. */
function attrEnd(s: string, i: number): number {
  let j = i;
  while (s[j] === '.') {
    j++;
    if (s[j] === '"') {
      j++;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      j = Math.min(j + 1, s.length);
    } else {
      const seg = matchAt(segRe, s, j);
      if (!seg) break;
      j += seg.length;
    }
  }
  return j;
}

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const push = (type: TokenType, end: number, extra: Partial<Token> = {}) => {
    out.push({ type, start: i, end, text: src.slice(i, end), ...extra });
    i = end;
  };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      let j = i + 1;
      while (j < src.length && /\s/.test(src[j])) j++;
      push('ws', j);
      continue;
    }
    if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += c === '"' && src[j] === '\\' ? 2 : 1;
      if (j >= src.length) push('string', src.length, { open: true });
      else push('string', j + 1);
      continue;
    }
    if ('{}(),|'.includes(c) && !(c === '|' && src[i + 1] === '|')) {
      push('punct', i + 1);
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = matchAt(numRe, src, i)!;
      push(/[a-zµ]$/.test(m) ? 'duration' : 'number', i + m.length);
      continue;
    }
    if (c === '.') {
      push('attr', Math.max(attrEnd(src, i), i + 1));
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const sc = scopes.find((p) => src.startsWith(p, i));
      if (sc) {
        let j = i + sc.length - 1;
        if (sc === 'parent.') {
          const inner = scopes.find((p) => p !== 'parent.' && src.startsWith(p, j + 1));
          if (inner) j += inner.length;
        }
        push('attr', Math.max(attrEnd(src, j), j + 1));
        continue;
      }
      const si = matchAt(scopedIntrinsicRe, src, i);
      if (si) {
        push('intrinsic', i + si.length);
        continue;
      }
      const id = matchAt(identRe, src, i)!;
      const after = src.slice(i + id.length).trimStart()[0];
      const type: TokenType = intrinsicSet.has(id) ? 'intrinsic' : funcs.has(id) && after === '(' ? 'func' : keywords.has(id) ? 'keyword' : 'ident';
      push(type, i + id.length);
      continue;
    }
    const op = ops.find((o) => src.startsWith(o, i));
    if (op) {
      push('op', i + op.length);
      continue;
    }
    push('error', i + 1);
  }
  return out;
}

export type CompletionContext =
  | { kind: 'attr'; prefix: string; from: number; to: number }
  | { kind: 'value'; attr: string; prefix: string; from: number; to: number };

const attrStarters = new Set(['{', '(', ',', '&&', '||', '!']);

/**
 * completionContext says what can be completed at cursor: an attribute
 * name (after "{", "&&", "||", "(" or while typing one) or a value of the
 * attribute before a comparison operator. from and to are the text to
 * replace.
 */
export function completionContext(src: string, cursor: number): CompletionContext | null {
  const toks = tokenize(src.slice(0, cursor));
  let k = toks.length - 1;
  let cur: Token | undefined;
  if (k >= 0 && toks[k].type !== 'ws' && toks[k].end === cursor && ['attr', 'ident', 'intrinsic', 'keyword', 'string', 'number', 'duration'].includes(toks[k].type)) {
    cur = toks[k];
    k--;
  }
  while (k >= 0 && toks[k].type === 'ws') k--;
  const prev = k >= 0 ? toks[k] : undefined;
  if (prev && prev.type === 'op' && comparisonOps.has(prev.text)) {
    let j = k - 1;
    while (j >= 0 && toks[j].type === 'ws') j--;
    const attr = j >= 0 ? toks[j] : undefined;
    if (attr && (attr.type === 'attr' || attr.type === 'intrinsic')) {
      if (cur && cur.type === 'string' && !cur.open && cur.end === cursor) return null; // closed string: done
      const prefix = cur ? cur.text.replace(/^["`]/, '') : '';
      return { kind: 'value', attr: attr.text, prefix, from: cur ? cur.start : cursor, to: cursor };
    }
    return null;
  }
  if (cur && cur.type === 'string') return null;
  if (cur && (cur.type === 'number' || cur.type === 'duration')) return null;
  if (!prev || attrStarters.has(prev.text)) {
    if (!prev && !cur) return null; // empty editor: nothing typed yet
    return { kind: 'attr', prefix: cur ? cur.text : '', from: cur ? cur.start : cursor, to: cursor };
  }
  if (cur && cur.type === 'attr') return { kind: 'attr', prefix: cur.text, from: cur.start, to: cursor };
  return null;
}

/** offsetOf converts a 1-based line and column (in Unicode code points) to a string offset (UTF-16). */
export function offsetOf(src: string, line: number, col: number): number {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = src.indexOf('\n', off);
    if (nl < 0) return src.length;
    off = nl + 1;
  }
  let c = 1;
  while (c < col && off < src.length) {
    const cp = src.codePointAt(off)!;
    if (cp === 10) break;
    off += cp > 0xffff ? 2 : 1;
    c++;
  }
  return off;
}

/** byteToOffset converts a UTF-8 byte offset into src to a string offset (UTF-16). */
export function byteToOffset(src: string, byte: number): number {
  let b = 0;
  let i = 0;
  while (i < src.length && b < byte) {
    const cp = src.codePointAt(i)!;
    b += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp > 0xffff ? 2 : 1;
  }
  return i;
}

export interface QueryErrorPosition {
  /** UTF-16 offsets into the query: [start, end) */
  start: number;
  end: number;
  line: number;
  column: number;
}

/**
 * errorPosition finds where a server error points into the query: from
 * the native API's position object, else from a "line:col:" in the
 * message (the Tempo API's plain-text errors).
 */
export function errorPosition(src: string, message: string, pos?: { start?: number; end?: number; line?: number; column?: number }): QueryErrorPosition | null {
  if (pos && typeof pos.start === 'number') {
    const start = byteToOffset(src, pos.start);
    const end = Math.max(byteToOffset(src, pos.end ?? pos.start + 1), start + 1);
    return { start, end: Math.min(end, Math.max(src.length, start + 1)), line: pos.line ?? 1, column: pos.column ?? start + 1 };
  }
  const m = /(?:^|\s|: )(\d+):(\d+): /.exec(message);
  if (!m) return null;
  const line = Number(m[1]);
  const column = Number(m[2]);
  const start = offsetOf(src, line, column);
  return { start, end: start + 1, line, column };
}

/** quoteString writes s as a TraceQL double-quoted string. */
export function quoteString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t') + '"';
}
