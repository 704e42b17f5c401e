import { expect, test } from 'vitest';
import { layoutGraph } from './layout';

test('layers follow call depth, cycles are broken', () => {
  const l = layoutGraph(
    [
      { id: 'frontend', type: 'service' },
      { id: 'checkout', type: 'service' },
      { id: 'payment', type: 'service' },
    ],
    [
      { source: 'frontend', target: 'checkout' },
      { source: 'checkout', target: 'payment' },
      { source: 'checkout', target: 'postgresql', connectionType: 'database' },
      { source: 'frontend', target: 'payment' },
      { source: 'payment', target: 'checkout' }, // cycle
      { source: 'payment', target: 'payment' }, // self call
    ],
  );
  const layer = Object.fromEntries(l.nodes.map((n) => [n.node.id, n.layer]));
  expect(layer).toEqual({ frontend: 0, checkout: 1, payment: 2, postgresql: 2 });
  expect(l.nodes.find((n) => n.node.id === 'postgresql')?.node.type).toBe('database');
  expect(l.edges.filter((e) => e.back).map((e) => `${e.edge.source}>${e.edge.target}`)).toEqual(['payment>checkout', 'payment>payment']);
  expect(l.layers).toBe(3);
  // Nodes of a layer do not overlap.
  const ys = l.nodes.filter((n) => n.layer === 2).map((n) => n.y).sort((a, b) => a - b);
  expect(ys[1] - ys[0]).toBeGreaterThanOrEqual(56);
});

test('empty graph', () => {
  const l = layoutGraph([], []);
  expect(l.nodes).toEqual([]);
});

test('nodes without edges are set apart under the graph', () => {
  const l = layoutGraph(
    [
      { id: 'a', type: 'service' },
      { id: 'b', type: 'service' },
      { id: 'lone', type: 'service' },
    ],
    [{ source: 'a', target: 'b' }],
  );
  const lone = l.nodes.find((n) => n.node.id === 'lone')!;
  expect(lone.layer).toBe(-1);
  expect(lone.y).toBeGreaterThan(Math.max(...l.nodes.filter((n) => n.layer >= 0).map((n) => n.y)));
  expect(l.layers).toBe(2);
  const only = layoutGraph([{ id: 'x', type: 'service' }, { id: 'y', type: 'service' }], []);
  expect(only.nodes.map((n) => [n.layer, n.y])).toEqual([[-1, 0], [-1, 0]]);
  expect(only.width).toBeGreaterThan(0);
});
