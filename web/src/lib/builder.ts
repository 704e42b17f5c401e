// The search form builder writes TraceQL, and reads back the TraceQL it
// can represent: one spanset filter whose conditions are joined by &&.
// The query text in the URL is the one source of truth, so a builder view
// is a deep link like any other.

import { comparisonOps, intrinsics, quoteString, tokenize, type Token } from './traceql';

export interface AttrCond {
  /** attribute as typed: "http.route", "span.http.route", "resource.host.name" */
  key: string;
  /** a comparison operator, or "exists" */
  op: string;
  value: string;
}

export interface BuilderForm {
  service: string;
  operation: string;
  status: '' | 'error' | 'ok' | 'unset';
  kind: string;
  /** TraceQL durations: "100ms", "1.5s" */
  minDuration: string;
  maxDuration: string;
  attrs: AttrCond[];
}

export function emptyForm(): BuilderForm {
  return { service: '', operation: '', status: '', kind: '', minDuration: '', maxDuration: '', attrs: [] };
}

const scoped = /^(?:parent\.)?(?:span|resource|event|link|instrumentation)?\./;

/** attrRef writes an attribute key as TraceQL: unscoped keys get a leading dot, odd segments quotes. */
export function attrRef(key: string): string {
  const k = key.trim();
  if (intrinsics.includes(k)) return k;
  const m = scoped.exec(k);
  const prefix = m ? m[0] : '.';
  const rest = m ? k.slice(m[0].length) : k;
  const segs = splitSegments(rest).map((s) => (/^[A-Za-z0-9_\-/@$#]+$/.test(s) || /^"(?:[^"\\]|\\.)*"$/.test(s) ? s : quoteString(s)));
  return prefix + segs.join('.');
}

/** splitSegments splits an attribute path at dots outside double quotes. */
function splitSegments(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === '\\') {
      cur += c + (s[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === '.' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** literal writes a value as TraceQL: numbers and booleans bare, durations bare for duration fields, the rest quoted. */
export function literal(value: string, op: string, key = ''): string {
  const v = value.trim();
  if (op === '=~' || op === '!~') return quoteString(value);
  if (/^".*"$/.test(v) && v.length >= 2) return v;
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v)) return v;
  if (v === 'true' || v === 'false' || v === 'nil') return v;
  if (/(^|:)(duration|traceDuration|timeSinceStart)$/.test(key) && /^\d+(\.\d+)?(ns|us|µs|ms|s|m|h)+$/.test(v)) return v;
  return quoteString(value);
}

export function buildTraceQL(f: BuilderForm): string {
  const conds: string[] = [];
  if (f.service.trim()) conds.push(`resource.service.name = ${quoteString(f.service.trim())}`);
  if (f.operation.trim()) conds.push(`name = ${quoteString(f.operation.trim())}`);
  if (f.status) conds.push(`status = ${f.status}`);
  if (f.kind) conds.push(`kind = ${f.kind}`);
  if (f.minDuration.trim()) conds.push(`duration >= ${f.minDuration.trim()}`);
  if (f.maxDuration.trim()) conds.push(`duration <= ${f.maxDuration.trim()}`);
  for (const a of f.attrs) {
    if (!a.key.trim()) continue;
    const ref = attrRef(a.key);
    if (a.op === 'exists') conds.push(`${ref} != nil`);
    else conds.push(`${ref} ${a.op} ${literal(a.value, a.op, ref)}`);
  }
  return conds.length ? `{ ${conds.join(' && ')} }` : '{ }';
}

function unquote(t: Token): string {
  if (t.type !== 'string') return t.text;
  if (t.text.startsWith('`')) return t.text.slice(1, -1);
  try {
    return JSON.parse(t.text) as string;
  } catch {
    return t.text.slice(1, -1);
  }
}

/** parseBuilder reads a query back into the form, or null when the builder cannot represent it. */
export function parseBuilder(q: string): BuilderForm | null {
  const toks = tokenize(q).filter((t) => t.type !== 'ws');
  const f = emptyForm();
  if (toks.length === 0) return f;
  if (toks[0].text !== '{' || toks[toks.length - 1].text !== '}') return null;
  const body = toks.slice(1, -1);
  if (body.length === 0) return f;
  for (let i = 0; i < body.length; ) {
    const [field, op, val] = [body[i], body[i + 1], body[i + 2]];
    if (!field || !op || !val || op.type !== 'op' || !comparisonOps.has(op.text)) return null;
    if (field.type !== 'attr' && field.type !== 'intrinsic') return null;
    if (!['string', 'number', 'duration', 'keyword'].includes(val.type) || val.open) return null;
    const k = field.text;
    const v = unquote(val);
    if (k === 'resource.service.name' && op.text === '=' && val.type === 'string' && !f.service) f.service = v;
    else if ((k === 'name' || k === 'span:name') && op.text === '=' && val.type === 'string' && !f.operation) f.operation = v;
    else if ((k === 'status' || k === 'span:status') && op.text === '=' && val.type === 'keyword' && !f.status) f.status = v as BuilderForm['status'];
    else if ((k === 'kind' || k === 'span:kind') && op.text === '=' && val.type === 'keyword' && !f.kind) f.kind = v;
    else if ((k === 'duration' || k === 'span:duration') && op.text === '>=' && val.type === 'duration' && !f.minDuration) f.minDuration = v;
    else if ((k === 'duration' || k === 'span:duration') && op.text === '<=' && val.type === 'duration' && !f.maxDuration) f.maxDuration = v;
    else if (op.text === '!=' && val.text === 'nil') f.attrs.push({ key: displayKey(k), op: 'exists', value: '' });
    else f.attrs.push({ key: displayKey(k), op: op.text, value: formValue(val, v, op.text) });
    i += 3;
    if (i < body.length) {
      if (body[i].text !== '&&') return null;
      i++;
      if (i >= body.length) return null;
    }
  }
  return f;
}

/**
 * formValue is the text the form shows for a value: a string unquoted,
 * unless literal() would then read it as something else (a number, a
 * boolean), in which case it keeps its quotes.
 */
function formValue(t: Token, unquoted: string, op: string): string {
  if (t.type !== 'string') return t.text;
  if (op === '=~' || op === '!~') return unquoted;
  return literal(unquoted, op) === quoteString(unquoted) && !/^".*"$/.test(unquoted) ? unquoted : quoteString(unquoted);
}

/** displayKey shows an unscoped attribute without its leading dot. */
function displayKey(k: string): string {
  return k.startsWith('.') ? k.slice(1) : k;
}
