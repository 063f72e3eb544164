// The management HTTP API client: the UI calls only the public /api endpoints, with HTTP
// Basic credentials kept in sessionStorage (gone when the tab closes), as RabbitMQ's UI.

const AUTH_KEY = 'warren.auth';
const USER_KEY = 'warren.user';

/** An API answer that is not a success: RabbitMQ's `error` and `reason`. */
export class ApiError extends Error {
  constructor(status, error, reason) {
    super(reason || error || `HTTP ${status}`);
    this.status = status;
    this.error = error;
    this.reason = reason;
  }
}

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function basicToken(user, password) {
  return base64(`${user}:${password}`);
}

export function savedUser() {
  return sessionStorage.getItem(USER_KEY);
}

export function hasCredentials() {
  return !!sessionStorage.getItem(AUTH_KEY);
}

export function saveCredentials(user, token) {
  sessionStorage.setItem(AUTH_KEY, token);
  sessionStorage.setItem(USER_KEY, user);
}

export function clearCredentials() {
  sessionStorage.removeItem(AUTH_KEY);
  sessionStorage.removeItem(USER_KEY);
}

let authLost = () => {};

/** Called when the API stops accepting the saved credentials. */
export function onAuthLost(f) {
  authLost = f;
}

function reasonText(r) {
  if (r == null) return null;
  return typeof r === 'string' ? r : JSON.stringify(r);
}

/**
 * Calls the API: `path` starts with "/" and is relative to api/. Resolves with the JSON
 * answer (null for 204), rejects with an ApiError carrying the API's reason.
 */
export async function request(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  const token = opts.token ?? sessionStorage.getItem(AUTH_KEY);
  if (token) headers.Authorization = 'Basic ' + token;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    // credentials: 'omit' keeps the browser from answering the 401 challenge with its
    // own password prompt: the Authorization header is ours.
    res = await fetch('api' + path, { method, headers, body: payload, credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'unreachable', 'Cannot reach the broker (' + (e.message || 'network error') + ')');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const obj = data && typeof data === 'object' ? data : {};
    const err = new ApiError(res.status, obj.error || res.statusText,
      reasonText(obj.reason) || (typeof data === 'string' && data) || `HTTP ${res.status} ${res.statusText}`);
    // A failed login (as opposed to a missing permission, `not_authorised`).
    if (res.status === 401 && !opts.token && (obj.error === 'not_authorized' || !text)) authLost(err);
    throw err;
  }
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const put = (path, body = {}, opts) => request('PUT', path, body, opts);
export const post = (path, body = {}, opts) => request('POST', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

/** One path segment (the default vhost "/" becomes %2F, as the API wants). */
export const enc = (s) => encodeURIComponent(s);

/** An exchange's name as a path segment: the default exchange is "amq.default". */
export const exSeg = (name) => enc(name === '' ? 'amq.default' : name);

/** A query string from an object, skipping empty values. */
export function query(params) {
  const q = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`)
    .join('&');
  return q ? '?' + q : '';
}
