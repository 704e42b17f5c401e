// A trace's summary: services with their spans, errors and time, the
// depth of the tree and the root.

import type { CriticalPath } from './critical';
import { isError } from './otlp';
import { selfTimes, type TraceTree } from './tree';

export interface ServiceSummary {
  service: string;
  spans: number;
  errors: number;
  /** time the service's spans spent not waiting on children (summed) */
  selfTime: number;
  /** time of the service on the critical path */
  criticalTime: number;
}

export interface TraceSummary {
  spans: number;
  errors: number;
  /** levels in the tree: 1 for a lone span */
  depth: number;
  duration: number;
  rootService: string;
  rootName: string;
  /** services, most time on the critical path first */
  services: ServiceSummary[];
}

export function summarize(tree: TraceTree, cp: CriticalPath): TraceSummary {
  const spans = tree.trace.spans;
  const self = selfTimes(tree);
  const by = new Map<string, ServiceSummary>();
  let errors = 0;
  spans.forEach((s, i) => {
    let v = by.get(s.service);
    if (!v) by.set(s.service, (v = { service: s.service, spans: 0, errors: 0, selfTime: 0, criticalTime: 0 }));
    v.spans++;
    v.selfTime += self[i];
    v.criticalTime += cp.selfOnPath[i];
    if (isError(s)) {
      v.errors++;
      errors++;
    }
  });
  const services = [...by.values()].sort((a, b) => b.criticalTime - a.criticalTime || b.selfTime - a.selfTime || a.service.localeCompare(b.service));
  const root = cp.top >= 0 ? spans[cp.top] : undefined;
  return {
    spans: spans.length,
    errors,
    depth: spans.length ? tree.maxDepth + 1 : 0,
    duration: tree.trace.duration,
    rootService: root?.service ?? '',
    rootName: root?.name ?? '',
    services,
  };
}
