// The page registry: each page has a URL pattern and, when it belongs in
// the navigation, a nav label. A new page is one entry here and one
// component.

import type { VNode } from 'preact';
import { AnomaliesPage } from './pages/Anomalies';
import { ComparePage } from './pages/Compare';
import { DeploysPage } from './pages/Deploys';
import { QualityPage } from './pages/Quality';
import { SearchPage } from './pages/Search';
import { ServiceMapPage } from './pages/ServiceMap';
import { ServicesPage } from './pages/Services';
import { TracePage } from './pages/Trace';
import type { Location } from './router';

export interface PageDef {
  id: string;
  /** label in the navigation; pages without one are reached by links */
  nav?: string;
  /** path in the navigation (below BASE) */
  navPath?: string;
  /** keyboard shortcut after "g" (g s: search) */
  key?: string;
  /** match returns the page's path parameters, or null */
  match: (path: string) => Record<string, string> | null;
  render: (params: Record<string, string>, loc: Location) => VNode;
}

const exact = (p: string) => (path: string) => (path === p ? {} : null);

export const pages: PageDef[] = [
  { id: 'search', nav: 'Search', navPath: 'search', key: 's', match: (p) => (p === '' || p === 'search' ? {} : null), render: (_, loc) => <SearchPage loc={loc} /> },
  {
    id: 'trace',
    match: (p) => {
      const m = /^trace\/([^/]*)$/.exec(p);
      return m ? { id: m[1] } : null;
    },
    render: (ps, loc) => <TracePage id={ps.id} loc={loc} key={ps.id} />,
  },
  { id: 'services', nav: 'Services', navPath: 'services', key: 'o', match: exact('services'), render: (_, loc) => <ServicesPage loc={loc} /> },
  { id: 'map', nav: 'Service map', navPath: 'map', key: 'm', match: exact('map'), render: (_, loc) => <ServiceMapPage loc={loc} /> },
  { id: 'anomalies', nav: 'Anomalies', navPath: 'anomalies', key: 'a', match: exact('anomalies'), render: (_, loc) => <AnomaliesPage loc={loc} /> },
  { id: 'deploys', nav: 'Deployments', navPath: 'deploys', key: 'd', match: exact('deploys'), render: (_, loc) => <DeploysPage loc={loc} /> },
  { id: 'quality', nav: 'Quality', navPath: 'quality', key: 'q', match: exact('quality'), render: (_, loc) => <QualityPage loc={loc} /> },
  { id: 'compare', nav: 'Compare', navPath: 'compare', key: 'c', match: exact('compare'), render: (_, loc) => <ComparePage loc={loc} /> },
];

export function route(path: string): { page: PageDef; params: Record<string, string> } | null {
  for (const page of pages) {
    const params = page.match(path);
    if (params) return { page, params };
  }
  return null;
}
