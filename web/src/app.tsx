// The app shell: navigation, theme, keyboard help, and the page for the
// current URL inside an error boundary (a bug in a page shows a message,
// never a blank screen).

import { Component, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { route, pages } from './pages';
import { BASE, href, navigate, useLocation } from './router';
import { TENANT_KEY, TOKEN_KEY } from './api';

type Theme = 'system' | 'light' | 'dark';

// TenantSettings sets the tenant (X-Scope-OrgID) and bearer token every
// API call sends, for a clew run with multitenancy or authentication.
// Changing them reloads the page so that every view reads the new tenant.
function TenantSettings() {
  const [open, setOpen] = useState(false);
  const tenant = localStorage.getItem(TENANT_KEY) || '';
  const save = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const t = String(f.get('tenant') || '').trim();
    const tok = String(f.get('token') || '').trim();
    if (t) localStorage.setItem(TENANT_KEY, t);
    else localStorage.removeItem(TENANT_KEY);
    if (tok) sessionStorage.setItem(TOKEN_KEY, tok);
    else sessionStorage.removeItem(TOKEN_KEY);
    window.location.reload();
  };
  return (
    <div class="tenant-settings">
      <button type="button" class="tenant-button" onClick={() => setOpen(!open)} aria-expanded={open} data-testid="tenant-button" title="Tenant and token sent with every request">
        Tenant: {tenant || 'default'}
      </button>
      {open && (
        <form class="tenant-form" onSubmit={save} data-testid="tenant-form">
          <label>
            Tenant (X-Scope-OrgID) <input name="tenant" defaultValue={tenant} placeholder="default" autoComplete="off" />
          </label>
          <label>
            Token <input name="token" type="password" placeholder={sessionStorage.getItem(TOKEN_KEY) ? '(set; empty clears)' : 'none'} autoComplete="off" />
          </label>
          <button type="submit">Use</button>
        </form>
      )}
    </div>
  );
}

function applyTheme(t: Theme) {
  if (t === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem('clew-theme') as Theme) || 'system');
  useEffect(() => {
    applyTheme(theme);
    if (theme === 'system') localStorage.removeItem('clew-theme');
    else localStorage.setItem('clew-theme', theme);
  }, [theme]);
  const next: Record<Theme, Theme> = { system: 'light', light: 'dark', dark: 'system' };
  const label: Record<Theme, string> = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' };
  return (
    <button type="button" class="theme-toggle" onClick={() => setTheme(next[theme])} aria-label={`${label[theme]} (click to switch to ${next[theme]})`} title={label[theme]} data-testid="theme-toggle">
      {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'} <span class="label">{theme}</span>
    </button>
  );
}

class Boundary extends Component<{ children: ComponentChildren; resetKey: string }, { error: Error | null; key: string }> {
  override state = { error: null as Error | null, key: this.props.resetKey };
  static override getDerivedStateFromProps(p: { resetKey: string }, s: { key: string }) {
    return p.resetKey !== s.key ? { error: null, key: p.resetKey } : null;
  }
  override componentDidCatch(error: Error) {
    this.setState({ error });
  }
  override render() {
    if (this.state.error) {
      return (
        <div class="page">
          <div class="state state-error" role="alert" data-state="crash">
            <div class="state-title">This page failed</div>
            <div class="state-message">{String(this.state.error.message || this.state.error)}</div>
            <p>
              <button type="button" onClick={() => location.reload()}>
                Reload
              </button>{' '}
              <a class="button" href={href('search')}>
                Go to search
              </a>
            </p>
          </div>
        </div>
      );
    }
    return this.props.children;
  }
}

const shortcuts: [string, string][] = [
  ['g s / g o / g m', 'go to Search, Services, Service map'],
  ['g a / g d / g q / g c', 'go to Anomalies, Deployments, Quality, Compare'],
  ['?', 'show this help'],
  ['Enter (in the query editor)', 'run the query; Shift+Enter for a new line; Ctrl+Space for suggestions'],
  ['↑ ↓ ← → Home End PageUp PageDown', 'move in the waterfall; ← → collapse and expand; Space toggles; Enter shows details'],
  ['w / f / s', 'trace view: waterfall, flame graph, summary'],
  ['c', 'trace view: show or hide the critical path'],
  ['y', 'trace view: why is it slow (compare with similar traces)'],
  ['← → Home End (on a chart)', 'move the chart cursor and read the values'],
  ['/ then n / N', 'trace view: find spans, next and previous match'],
  ['z / 0', 'flame graph: zoom to the selected span, reset the zoom'],
  ['Escape', 'close the span details, a popup or this help'],
];

function Help({ onClose }: { onClose: () => void }) {
  return (
    <div class="dialog-backdrop" onClick={onClose}>
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="help-title" onClick={(e) => e.stopPropagation()}>
        <h2 id="help-title">Keyboard shortcuts</h2>
        <table>
          <tbody>
            {shortcuts.map(([k, v]) => (
              <tr>
                <th scope="row">
                  <kbd>{k}</kbd>
                </th>
                <td>{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <button type="button" onClick={onClose} autoFocus>
          Close
        </button>
      </div>
    </div>
  );
}

export function App() {
  const loc = useLocation();
  const r = route(loc.path);
  const [help, setHelp] = useState(false);
  useEffect(() => {
    let g = false;
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || t.isContentEditable) return;
      if (e.key === 'Escape' && help) return setHelp(false);
      if (e.key === '?') return setHelp(true);
      if (g) {
        g = false;
        const p = pages.find((x) => x.key === e.key && x.navPath);
        if (p) {
          e.preventDefault();
          e.stopImmediatePropagation();
          navigate(href(p.navPath!));
        }
        return;
      }
      if (e.key === 'g') {
        g = true;
        setTimeout(() => (g = false), 1000);
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => document.removeEventListener('keydown', onKey, true);
  }, [help]);
  // Move focus to the new page's content for keyboard and screen reader users.
  useEffect(() => {
    const main = document.getElementById('main');
    if (main && document.activeElement === document.body) main.focus({ preventScroll: true });
  }, [loc.path]);
  const active = r?.page.id === 'trace' ? '' : r?.page.id;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={BASE + 'search'} aria-label="clew home">
          <img src={BASE + 'favicon.svg'} alt="" width={22} height={22} /> clew
        </a>
        <nav aria-label="Main">
          <ul>
            {pages
              .filter((p) => p.nav)
              .map((p) => (
                <li>
                  <a href={href(p.navPath!)} aria-current={active === p.id ? 'page' : undefined}>
                    {p.nav}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <div class="spacer" />
        <button type="button" class="help-button" onClick={() => setHelp(true)} aria-label="Keyboard shortcuts (?)" title="Keyboard shortcuts (?)">
          ?
        </button>
        <TenantSettings />
        <ThemeToggle />
      </header>
      <main id="main" tabIndex={-1}>
        <Boundary resetKey={loc.path}>
          {r ? (
            r.page.render(r.params, loc)
          ) : (
            <div class="page">
              <div class="state state-empty" data-state="not-found" role="alert">
                <div class="state-title">No such page</div>
                <p>
                  Nothing lives at <code>{BASE + loc.path}</code>. <a href={href('search')}>Search traces</a>.
                </p>
              </div>
            </div>
          )}
        </Boundary>
      </main>
      {help && <Help onClose={() => setHelp(false)} />}
    </>
  );
}
