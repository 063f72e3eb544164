// Formatting of figures: counts, rates, bytes, durations, times.

const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const one = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const two = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export const DASH = '—';

export function num(v) {
  if (v == null || Number.isNaN(v)) return DASH;
  return Number.isInteger(v) ? whole.format(v) : two.format(v);
}

/** A per-second rate: "12.3/s" (one decimal below 100, none above). */
export function rate(v) {
  if (v == null || Number.isNaN(v)) return DASH;
  const a = Math.abs(v);
  return (a >= 100 ? whole.format(v) : one.format(v)) + '/s';
}

/** A short number for axes: 950, 1.2k, 3.4M. */
export function compact(v) {
  const a = Math.abs(v);
  const f = (x, s) => (Math.abs(x) >= 10 ? Math.round(x) : Math.round(x * 10) / 10) + s;
  if (a >= 1e9) return f(v / 1e9, 'G');
  if (a >= 1e6) return f(v / 1e6, 'M');
  if (a >= 1e3) return f(v / 1e3, 'k');
  if (a > 0 && a < 1) return String(Math.round(v * 100) / 100);
  return String(Math.round(v * 10) / 10);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(v) {
  if (v == null || Number.isNaN(v)) return DASH;
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1024 && i < UNITS.length - 1) { x /= 1024; i++; }
  const s = i === 0 ? String(x) : (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  return (v < 0 ? '-' : '') + s + ' ' + UNITS[i];
}

export function byteRate(v) {
  if (v == null || Number.isNaN(v)) return DASH;
  return bytes(Math.round(v)) + '/s';
}

/** A duration in milliseconds: "3d 4h", "5m 12s", "820 ms". */
export function duration(ms) {
  if (ms == null || Number.isNaN(ms)) return DASH;
  if (ms < 1000) return Math.round(ms) + ' ms';
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

export function dateTime(ms) {
  if (!ms) return DASH;
  const d = new Date(ms);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function clock(ms, seconds = true) {
  return new Date(ms).toLocaleTimeString(undefined, seconds
    ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
    : { hour: '2-digit', minute: '2-digit' });
}

/** "3 minutes ago" style, for connection times. */
export function ago(ms) {
  if (!ms) return DASH;
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 45) return 'just now';
  if (s < 90) return 'a minute ago';
  if (s < 3600) return Math.round(s / 60) + ' minutes ago';
  if (s < 5400) return 'an hour ago';
  if (s < 86400) return Math.round(s / 3600) + ' hours ago';
  return Math.round(s / 86400) + ' days ago';
}

export function plural(n, one, many = one + 's') {
  return `${num(n)} ${n === 1 ? one : many}`;
}

/** A value of an argument or header, as text. */
export function value(v) {
  if (v == null) return 'null';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** The rate in a `*_details` object of RabbitMQ's JSON, or null. */
export function rateOf(obj, key) {
  const d = obj && obj[key + '_details'];
  return d && typeof d.rate === 'number' ? d.rate : null;
}

export const yes = (v) => (v ? 'Yes' : 'No');
