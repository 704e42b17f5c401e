// Service colours: a stable colour per service name (the same service has
// the same colour in every trace and in both halves of a comparison),
// chosen from a palette readable on light and dark backgrounds.

const palette = [
  '#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#edc948', '#76b7b2', '#ff9da7', '#9c755f',
  '#3b8bd4', '#d4a03b', '#6fbf73', '#c45a8b', '#8c6bd6', '#2fa39a', '#d9734e', '#7f9c3a',
];

export function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

const cache = new Map<string, string>();

export function serviceColor(service: string): string {
  let c = cache.get(service);
  if (!c) cache.set(service, (c = palette[hash(service) % palette.length]));
  return c;
}
