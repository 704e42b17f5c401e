// A layered layout of the service graph: callers left of callees. Cycles
// are broken by leaving out the edges that close them (drawn as back
// edges), each node's layer is its longest call depth from a node nobody
// calls, and a few barycenter sweeps order each layer to reduce crossings.
// Nodes without edges are set apart in rows under the graph.

export interface GraphNode {
  id: string;
  type: string;
  calls?: number;
  errors?: number;
}

export interface GraphEdge {
  source: string;
  target: string;
  connectionType?: string;
  calls?: number;
  errors?: number;
  ratePerSecond?: number;
  errorRate?: number;
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
}

export interface PlacedNode {
  node: GraphNode;
  /** the node's call depth; -1 for a node without edges */
  layer: number;
  order: number;
  x: number;
  y: number;
}

export interface PlacedEdge {
  edge: GraphEdge;
  /** closes a cycle (or is a self-call): drawn curving back */
  back: boolean;
}

export interface Layout {
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  width: number;
  height: number;
  layers: number;
}

export interface LayoutOptions {
  nodeWidth?: number;
  nodeHeight?: number;
  gapX?: number;
  gapY?: number;
}

const typeOfConnection: Record<string, string> = { database: 'database', messaging_system: 'messaging', virtual_node: 'external' };

export function layoutGraph(nodesIn: GraphNode[], edges: GraphEdge[], opts: LayoutOptions = {}): Layout {
  const w = opts.nodeWidth ?? 180;
  const h = opts.nodeHeight ?? 56;
  const gx = opts.gapX ?? 120;
  const gy = opts.gapY ?? 36;
  const nodes = new Map<string, GraphNode>();
  for (const n of nodesIn) if (!nodes.has(n.id)) nodes.set(n.id, n);
  for (const e of edges) {
    if (!nodes.has(e.source)) nodes.set(e.source, { id: e.source, type: 'service' });
    if (!nodes.has(e.target)) nodes.set(e.target, { id: e.target, type: typeOfConnection[e.connectionType ?? ''] ?? 'service' });
  }
  const linked = new Set<string>();
  for (const e of edges) {
    linked.add(e.source);
    linked.add(e.target);
  }
  const ids = [...nodes.keys()].filter((id) => linked.has(id)).sort();
  const lone = [...nodes.keys()].filter((id) => !linked.has(id)).sort();
  const out = new Map<string, number[]>();
  const indeg = new Map<string, number>();
  ids.forEach((id) => {
    out.set(id, []);
    indeg.set(id, 0);
  });
  edges.forEach((e, i) => {
    out.get(e.source)!.push(i);
    indeg.set(e.target, indeg.get(e.target)! + 1);
  });

  // Depth-first from the nodes nobody calls, then the rest: an edge to a
  // node still on the stack closes a cycle.
  const back = new Array<boolean>(edges.length).fill(false);
  const state = new Map<string, 0 | 1 | 2>(); // 0 new, 1 on stack, 2 done
  const starts = [...ids.filter((id) => indeg.get(id) === 0), ...ids];
  for (const s of starts) {
    if (state.get(s)) continue;
    const stack: { id: string; k: number }[] = [{ id: s, k: 0 }];
    state.set(s, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const outs = out.get(top.id)!;
      if (top.k >= outs.length) {
        state.set(top.id, 2);
        stack.pop();
        continue;
      }
      const ei = outs[top.k++];
      const t = edges[ei].target;
      const st = state.get(t) ?? 0;
      if (st === 1) back[ei] = true;
      else if (st === 0) {
        state.set(t, 1);
        stack.push({ id: t, k: 0 });
      }
    }
  }

  // Longest path layering over the forward edges (Kahn's order).
  const layer = new Map<string, number>(ids.map((id) => [id, 0]));
  const fin = new Map<string, number>(ids.map((id) => [id, 0]));
  edges.forEach((e, i) => {
    if (!back[i]) fin.set(e.target, fin.get(e.target)! + 1);
  });
  const queue = ids.filter((id) => fin.get(id) === 0);
  for (let q = 0; q < queue.length; q++) {
    const id = queue[q];
    for (const ei of out.get(id)!) {
      if (back[ei]) continue;
      const t = edges[ei].target;
      layer.set(t, Math.max(layer.get(t)!, layer.get(id)! + 1));
      fin.set(t, fin.get(t)! - 1);
      if (fin.get(t) === 0) queue.push(t);
    }
  }
  const nLayers = ids.length ? Math.max(0, ...layer.values()) + 1 : 0;
  const byLayer: string[][] = Array.from({ length: nLayers }, () => []);
  for (const id of ids) byLayer[layer.get(id)!].push(id);

  // Barycenter sweeps: down by callers, up by callees.
  const pos = new Map<string, number>();
  const index = () => byLayer.forEach((l) => l.forEach((id, i) => pos.set(id, i)));
  index();
  const preds = new Map<string, string[]>(ids.map((id) => [id, []]));
  const succs = new Map<string, string[]>(ids.map((id) => [id, []]));
  edges.forEach((e, i) => {
    if (back[i] || e.source === e.target) return;
    preds.get(e.target)!.push(e.source);
    succs.get(e.source)!.push(e.target);
  });
  const sweep = (l: string[], nb: Map<string, string[]>) => {
    const bc = new Map<string, number>();
    for (const id of l) {
      const ns = nb.get(id)!;
      bc.set(id, ns.length ? ns.reduce((s, x) => s + pos.get(x)!, 0) / ns.length : pos.get(id)!);
    }
    l.sort((a, b) => bc.get(a)! - bc.get(b)! || a.localeCompare(b));
    l.forEach((id, i) => pos.set(id, i));
  };
  for (let it = 0; it < 4; it++) {
    for (let L = 1; L < nLayers; L++) sweep(byLayer[L], preds);
    for (let L = nLayers - 2; L >= 0; L--) sweep(byLayer[L], succs);
  }

  const maxCount = Math.max(0, ...byLayer.map((l) => l.length));
  const graphH = maxCount ? maxCount * h + (maxCount - 1) * gy : 0;
  const placed: PlacedNode[] = [];
  byLayer.forEach((l, L) => {
    const off = (graphH - (l.length * h + (l.length - 1) * gy)) / 2;
    l.forEach((id, i) => placed.push({ node: nodes.get(id)!, layer: L, order: i, x: L * (w + gx), y: off + i * (h + gy) }));
  });
  let width = nLayers ? nLayers * w + (nLayers - 1) * gx : 0;
  let height = graphH;
  if (lone.length) {
    // Rows of unconnected nodes under the graph, at least four across.
    const across = Math.max(4, Math.floor((width + gx / 2) / (w + gx / 2)));
    const top = graphH ? graphH + 2 * gy : 0;
    lone.forEach((id, i) => placed.push({ node: nodes.get(id)!, layer: -1, order: i, x: (i % across) * (w + gx / 2), y: top + Math.floor(i / across) * (h + gy / 2) }));
    const rows = Math.ceil(lone.length / across);
    width = Math.max(width, Math.min(lone.length, across) * (w + gx / 2) - gx / 2);
    height = top + rows * h + (rows - 1) * (gy / 2);
  }
  return {
    nodes: placed,
    edges: edges.map((e, i) => ({ edge: e, back: back[i] || e.source === e.target })),
    width,
    height,
    layers: nLayers,
  };
}
