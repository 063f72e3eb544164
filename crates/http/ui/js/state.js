// What every page shares: who is logged in, the broker's overview, the vhosts, the
// selected vhost and the refresh interval.

export const state = {
  user: null,
  tags: [],
  overview: null,
  vhosts: [],
  vhost: sessionStorage.getItem('warren.vhost') || '',
  refreshMs: Number(localStorage.getItem('warren.refresh') ?? 5000),
};

const hooks = { refresh: () => {} };

export function setRefreshHook(f) {
  hooks.refresh = f;
}

/** Refreshes the current page now (after an action changed something). */
export function refreshNow() {
  hooks.refresh();
}

export function navigate(hash) {
  if (location.hash === hash) refreshNow();
  else location.hash = hash;
}

export const hasTag = (t) => state.tags.includes(t);
export const isAdmin = () => hasTag('administrator');
export const isMonitor = () => isAdmin() || hasTag('monitoring');
export const isPolicymaker = () => isAdmin() || hasTag('policymaker');

/** The vhost new objects go to: the selected one, else "/", else the first. */
export function defaultVhost() {
  if (state.vhost) return state.vhost;
  if (state.vhosts.includes('/') || !state.vhosts.length) return '/';
  return state.vhosts[0];
}

/** A hash route: segments are URI-encoded ("#/queues/%2F/orders"). */
export function route(...segments) {
  return '#/' + segments.map((s) => encodeURIComponent(s)).join('/');
}

export function setVhost(v) {
  state.vhost = v;
  sessionStorage.setItem('warren.vhost', v);
}

export function setRefresh(ms) {
  state.refreshMs = ms;
  localStorage.setItem('warren.refresh', String(ms));
}
