// The application shell: login, header, navigation, routing (hash routes, so every page
// has a link and the server serves one page) and the live refresh loop.

import { clearCredentials, get, hasCredentials, onAuthLost, savedUser } from './api.js';
import { clear, empty, h } from './dom.js';
import { num } from './fmt.js';
import { isAdmin, isPolicymaker, setRefresh, setRefreshHook, setVhost, state } from './state.js';
import * as admin from './pages/admin.js';
import * as channels from './pages/channels.js';
import * as connections from './pages/connections.js';
import * as exchanges from './pages/exchanges.js';
import * as login from './pages/login.js';
import * as overview from './pages/overview.js';
import * as queues from './pages/queues.js';

const app = document.getElementById('app');
let current = null;
let timer = null;
let shell = null;
let lostShown = false;

const REFRESH_CHOICES = [[2000, 'Every 2 s'], [5000, 'Every 5 s'], [10000, 'Every 10 s'], [30000, 'Every 30 s'], [0, 'Paused']];

const TABS = [
  ['overview', 'Overview', '#/', null],
  ['connections', 'Connections', '#/connections', 'connections'],
  ['channels', 'Channels', '#/channels', 'channels'],
  ['exchanges', 'Exchanges', '#/exchanges', 'exchanges'],
  ['queues', 'Queues', '#/queues', 'queues'],
  ['admin', 'Admin', '#/users', null],
];

/** The page for a hash route ("#/queues/%2F/orders" -> queues.detail("/", "orders")). */
function resolve(hash) {
  const path = hash.replace(/^#\/?/, '');
  const parts = path === '' ? [] : path.split('/').map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  const [top, a, b] = parts;
  const n = parts.length;
  const adminOnly = (f) => (isAdmin() ? f() : forbidden());
  switch (top) {
    case undefined: return ['overview', overview.page()];
    case 'connections': return ['connections', n === 1 ? connections.list() : connections.detail(parts.slice(1).join('/'))];
    case 'channels': return ['channels', n === 1 ? channels.list() : channels.detail(parts.slice(1).join('/'))];
    case 'exchanges':
      if (n === 1) return ['exchanges', exchanges.list()];
      if (n === 3) return ['exchanges', exchanges.detail(a, b)];
      break;
    case 'queues':
      if (n === 1) return ['queues', queues.list()];
      if (n === 3) return ['queues', queues.detail(a, b)];
      break;
    case 'admin':
    case 'users':
      if (n <= 1) return ['admin', adminOnly(() => admin.users())];
      if (n === 2 && top === 'users') return ['admin', adminOnly(() => admin.user(a))];
      break;
    case 'vhosts':
      if (n === 1) return ['admin', adminOnly(() => admin.vhosts())];
      if (n === 2) return ['admin', adminOnly(() => admin.vhost(a))];
      break;
    case 'policies':
      if (n === 1) return ['admin', isPolicymaker() ? admin.policies() : forbidden()];
      break;
    case 'definitions':
      if (n === 1) return ['admin', adminOnly(() => admin.definitions())];
      break;
    default:
  }
  return [null, notFound()];
}

function notFound() {
  return {
    title: 'Not found',
    el: h('div', { class: 'notfound' }, empty({ iconName: 'search', title: 'There is no such page', text: 'The address does not match any page of the management UI.', cta: h('a', { href: '#/' }, 'Go to the overview') })),
  };
}

function forbidden() {
  return {
    title: 'Not allowed',
    el: h('div', { class: 'notfound' }, empty({ iconName: 'policy', title: 'Administrators only', text: `User ${state.user} does not have the administrator tag this page needs.`, cta: h('a', { href: '#/' }, 'Go to the overview') })),
  };
}

// ---------- shell ----------

function buildShell() {
  const vhostSel = h('select', { id: 'vhost-select', 'aria-label': 'Virtual host' });
  vhostSel.addEventListener('change', () => {
    setVhost(vhostSel.value);
    route();
  });
  const refreshSel = h('select', { id: 'refresh-select', 'aria-label': 'Refresh interval' },
    REFRESH_CHOICES.map(([ms, t]) => h('option', { value: ms, selected: ms === state.refreshMs }, t)));
  refreshSel.addEventListener('change', () => {
    setRefresh(Number(refreshSel.value));
    schedule();
    tick();
  });
  const live = h('span', { class: 'live', id: 'live' }, 'Live');
  const logout = h('button', { type: 'button', class: 'ghost small', id: 'logout', onclick: () => {
    clearCredentials();
    stop();
    showLogin();
  } }, 'Log out');
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Sections' },
    TABS.filter(([id]) => id !== 'admin' || isAdmin() || isPolicymaker()).map(([id, label, href]) =>
      h('a', { href: id === 'admin' && !isAdmin() ? '#/policies' : href, dataset: { tab: id } }, label, h('span', { class: 'count', hidden: true }))));
  const brandVer = h('span', { class: 'ver' });
  const cluster = h('div', { class: 'cluster' });
  const banner = h('div', { class: 'banner', hidden: true, role: 'alert', id: 'refresh-error' });
  const main = h('main', { id: 'main' });
  const footer = h('footer');
  const header = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/' }, h('img', { src: 'static/' + versionPath() + 'img/logo.svg', alt: '' }), 'Warren', brandVer),
    cluster,
    h('div', { class: 'controls' },
      h('label', { class: 'inline' }, 'Virtual host', vhostSel),
      h('label', { class: 'inline' }, 'Refresh', refreshSel),
      live,
      h('div', { class: 'who' }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, (state.user || '?').slice(0, 2)),
        h('span', { id: 'username' }, state.user), logout)));
  app.replaceChildren(header, tabs, h('div', { class: 'page-wrap' }, banner, main), footer);
  shell = { vhostSel, refreshSel, live, tabs, brandVer, cluster, banner, main, footer };
  drawVhosts();
}

/** The version segment of the asset paths (read from the stylesheet's address). */
function versionPath() {
  const link = document.querySelector('link[rel=stylesheet]');
  const m = link && link.getAttribute('href').match(/static\/([^/]+)\//);
  return m ? m[1] + '/' : '';
}

function drawVhosts() {
  const sel = shell.vhostSel;
  const names = state.vhosts;
  if (state.vhost && !names.includes(state.vhost) && names.length) setVhost('');
  const want = ['', ...names].join('\n');
  if (sel.dataset.names !== want) {
    clear(sel, h('option', { value: '' }, 'All'), names.map((n) => h('option', { value: n }, n)));
    sel.dataset.names = want;
  }
  sel.value = state.vhost;
}

function drawHeader() {
  const o = state.overview;
  if (!o || !shell) return;
  shell.brandVer.textContent = o.product_version || '';
  shell.cluster.replaceChildren(h('span', null, 'Cluster ', h('b', null, o.cluster_name)), h('span', null, `Node ${o.node}`));
  const totals = o.object_totals || {};
  for (const a of shell.tabs.querySelectorAll('a')) {
    const key = TABS.find(([id]) => id === a.dataset.tab)[3];
    const badge = a.querySelector('.count');
    if (key && totals[key] != null) {
      badge.hidden = false;
      badge.textContent = num(totals[key]);
    }
  }
  shell.footer.replaceChildren(
    `${o.product_name || 'Warren'} ${o.product_version || ''} · management API of RabbitMQ ${o.rabbitmq_version} · `,
    h('a', { href: 'api/overview', target: '_blank', rel: 'noopener' }, 'HTTP API at /api'));
}

function setActiveTab(id) {
  for (const a of shell.tabs.querySelectorAll('a')) {
    a.classList.toggle('active', a.dataset.tab === id);
    if (a.dataset.tab === id) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

async function refreshShell() {
  const [o, vhosts] = await Promise.all([get('/overview'), get('/vhosts?columns=name')]);
  state.overview = o;
  state.vhosts = vhosts.map((v) => v.name).sort();
  drawHeader();
  drawVhosts();
}

function setLive(mode, text) {
  if (!shell) return;
  shell.live.className = 'live' + (mode === 'ok' ? '' : ' ' + mode);
  shell.live.textContent = text;
}

// ---------- routing and refresh ----------

function route() {
  if (!shell) return;
  if (current && current.destroy) current.destroy();
  const [tab, page] = resolve(location.hash);
  current = page;
  setActiveTab(tab);
  shell.banner.hidden = true;
  shell.main.replaceChildren(page.el);
  document.title = `${page.title} · Warren`;
  window.scrollTo(0, 0);
  tick(true);
}

async function tick(force) {
  const p = current;
  if (!p || !shell) return;
  if (!force && (document.hidden || p.busy)) return;
  p.busy = true;
  try {
    await refreshShell();
    if (p.refresh) await p.refresh();
    if (p === current) {
      shell.banner.hidden = true;
      if (state.refreshMs) setLive('ok', 'Live'); else setLive('paused', 'Paused');
      if (p.title && state.overview) document.title = `${p.title} · ${state.overview.cluster_name} · Warren`;
    }
  } catch (err) {
    if (p === current && !lostShown) {
      setLive('down', err.status === 0 ? 'Offline' : 'Error');
      shell.banner.textContent = err.status === 0
        ? `${err.reason}. ${state.refreshMs ? 'Retrying…' : ''}`
        : `Could not refresh: ${err.error ? err.error + ': ' : ''}${err.reason || err.message}`;
      shell.banner.hidden = false;
    }
  } finally {
    p.busy = false;
  }
}

function schedule() {
  clearInterval(timer);
  timer = null;
  if (state.refreshMs > 0) timer = setInterval(() => tick(false), state.refreshMs);
}

function stop() {
  clearInterval(timer);
  timer = null;
  window.removeEventListener('hashchange', route);
  if (current && current.destroy) current.destroy();
  current = null;
  shell = null;
}

async function boot() {
  lostShown = false;
  const me = await get('/whoami');
  state.user = me.name;
  state.tags = Array.isArray(me.tags) ? me.tags : String(me.tags || '').split(',').filter(Boolean);
  try {
    await refreshShell();
  } catch { /* shown by the first tick */ }
  buildShell();
  drawHeader();
  window.addEventListener('hashchange', route);
  schedule();
  route();
}

function showLogin(message) {
  document.title = 'Log in · Warren';
  app.replaceChildren(login.page({
    message,
    user: savedUser(),
    done: () => boot().catch((e) => showLogin(e.reason || e.message)),
  }));
}

onAuthLost((err) => {
  if (lostShown || !shell) return;
  lostShown = true;
  clearCredentials();
  stop();
  showLogin(`Your session has ended (${err.reason || 'login failed'}). Log in again.`);
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) tick(false);
});

setRefreshHook(() => tick(true));

if (hasCredentials()) {
  boot().catch((e) => {
    clearCredentials();
    showLogin(e.reason || e.message);
  });
} else {
  showLogin();
}

