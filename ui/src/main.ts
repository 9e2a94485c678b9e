// vigil's web UI: a small router over the pages. Paths are relative to the
// page's <base href>, which the server sets to the route prefix (or the
// external URL's path), so the UI works under a prefix.

import 'uplot/dist/uPlot.min.css';
import './style.css';
import { h, mount } from './dom';
import { explorer } from './explorer';
import { alertsPage } from './alerts';
import { rulesPage, statusPage, targetsPage } from './pages';
import { dashboardList, dashboardView } from './dashboards';

const NAV: [string, string][] = [
  ['graph', 'Query'],
  ['dashboards', 'Dashboards'],
  ['alerts', 'Alerts'],
  ['targets', 'Targets'],
  ['rules', 'Rules'],
  ['status', 'Status'],
];

const basePath = new URL(document.baseURI).pathname;
const nav = h('nav');
const main = h('main');
let cleanup: (() => void) | null = null;

/** The route: the path below the base, without slashes at the ends. */
function route(): string {
  const p = location.pathname;
  const rel = p.startsWith(basePath) ? p.slice(basePath.length) : p.replace(/^\//, '');
  return rel.replace(/\/+$/, '');
}

async function render() {
  cleanup?.();
  cleanup = null;
  const r = route();
  const [page, ...rest] = r.split('/');
  const current = page === '' ? 'graph' : page;
  mount(
    nav,
    h('a.brand', { href: './' }, 'vigil'),
    NAV.map(([path, label]) => h('a' + (current === path ? '.active' : ''), { href: path }, label)),
  );
  mount(main, h('div.muted', 'Loading…'));
  document.title = `vigil · ${NAV.find(([p]) => p === current)?.[1] ?? 'vigil'}`;
  try {
    switch (current) {
      case 'graph':
        cleanup = explorer(main);
        break;
      case 'dashboards':
        if (rest.length > 0) cleanup = await dashboardView(main, decodeURIComponent(rest.join('/')));
        else await dashboardList(main);
        break;
      case 'alerts':
        cleanup = await alertsPage(main);
        break;
      case 'targets':
        await targetsPage(main);
        break;
      case 'rules':
        await rulesPage(main);
        break;
      case 'status':
        await statusPage(main);
        break;
      default:
        mount(main, h('h1', 'Not found'), h('p', `No page "${r}".`));
    }
  } catch (e) {
    mount(main, h('div.error', e instanceof Error ? e.message : String(e)));
  }
}

// Links inside the UI navigate without reloading the page.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element).closest('a');
  if (!a || a.target || a.origin !== location.origin) return;
  if (!a.pathname.startsWith(basePath) || a.pathname.startsWith(basePath + 'api/')) return;
  e.preventDefault();
  history.pushState(null, '', a.href);
  void render();
});
window.addEventListener('popstate', () => void render());

document.body.append(h('header', nav), main);
void render();
