// Live line charts drawn as SVG by this file alone. The API gives current figures and
// rates; each chart keeps the samples it has seen (per page, for the whole session),
// so leaving a page and coming back keeps the history.

import { clear, h, s } from './dom.js';
import { clock, compact } from './fmt.js';

const HISTORIES = new Map();
const MAX_AGE = 3600 * 1000;
const WINDOWS = [[60, '1 min'], [300, '5 min'], [600, '10 min'], [3600, '1 h']];
let windowSecs = Number(localStorage.getItem('warren.chartWindow') || 300);
const live = new Set();

function historyOf(key) {
  let hist = HISTORIES.get(key);
  if (!hist) {
    hist = { samples: [], hidden: new Set() };
    HISTORIES.set(key, hist);
  }
  return hist;
}

/** The segmented control choosing how much history every chart shows. */
export function windowControl() {
  const seg = h('div', { class: 'seg', role: 'group', 'aria-label': 'Chart time range' });
  const draw = () => seg.replaceChildren(...WINDOWS.map(([secs, label]) =>
    h('button', { type: 'button', class: secs === windowSecs ? 'on' : null, 'aria-pressed': String(secs === windowSecs), onclick: () => {
      windowSecs = secs;
      localStorage.setItem('warren.chartWindow', String(secs));
      for (const c of [...live]) {
        if (c.el.isConnected) c.render(); else live.delete(c);
      }
      for (const x of document.querySelectorAll('.seg.chart-window')) x.dispatchEvent(new Event('redraw'));
    } }, label)));
  seg.classList.add('chart-window');
  seg.addEventListener('redraw', draw);
  draw();
  return seg;
}

function niceStep(range, ticks) {
  const raw = range / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
}

const TIME_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800];

export class LineChart {
  /**
   * key: names the history (e.g. "overview:rates:/"); series: [{key, label}];
   * format: a value as text (legend, tooltip); height in px.
   */
  constructor({ key, series, format, height = 190, name }) {
    this.hist = historyOf(key);
    this.series = series;
    this.format = format || ((v) => compact(v));
    this.height = height;
    this.plot = h('div', { class: 'chart', dataset: { chart: name || key } });
    this.legend = h('div', { class: 'legend' });
    this.el = h('div', { class: 'chart-block' }, this.plot, this.legend);
    this.tip = null;
    this.width = 0;
    this.ro = new ResizeObserver(() => {
      const w = this.plot.clientWidth;
      if (w && w !== this.width) this.render();
    });
    this.ro.observe(this.plot);
    live.add(this);
  }

  /** Adds a sample of every series now (values: {key: number}). */
  push(values, t = Date.now()) {
    const samples = this.hist.samples;
    const last = samples[samples.length - 1];
    // Two pages sharing a history (or a quick double refresh) add one sample a second.
    if (last && t - last.t < 900) samples[samples.length - 1] = { t, v: values };
    else samples.push({ t, v: values });
    while (samples.length && samples[0].t < t - MAX_AGE) samples.shift();
    this.render();
  }

  visible() {
    return this.series.filter((x) => !this.hist.hidden.has(x.key));
  }

  render() {
    const width = this.plot.clientWidth || 600;
    this.width = width;
    const height = this.height;
    const m = { l: 46, r: 10, t: 10, b: 24 };
    const now = Date.now();
    const t0 = now - windowSecs * 1000;
    const samples = this.hist.samples.filter((x) => x.t >= t0 - 5000);
    const shown = this.visible();
    let max = 0;
    for (const sm of samples) for (const se of shown) max = Math.max(max, sm.v[se.key] || 0);
    const step = niceStep(max > 0 ? max : 1, 4);
    const top = Math.max(step, Math.ceil((max > 0 ? max : 1) / step) * step);
    const x = (t) => m.l + ((t - t0) / (now - t0)) * (width - m.l - m.r);
    const y = (v) => m.t + (1 - v / top) * (height - m.t - m.b);
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, height, role: 'img', 'aria-label': this.series.map((x) => x.label).join(', ') });
    for (let v = 0; v <= top + step / 2; v += step) {
      svg.append(s('line', { class: 'grid-line', x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }));
      svg.append(s('text', { class: 'axis-label', x: m.l - 8, y: y(v) + 4, 'text-anchor': 'end' }, compact(v)));
    }
    const span = windowSecs;
    const ts = TIME_STEPS.find((st) => span / st <= Math.max(2, Math.floor((width - m.l) / 90))) || 3600;
    for (let t = Math.ceil(t0 / 1000 / ts) * ts * 1000; t <= now; t += ts * 1000) {
      svg.append(s('text', { class: 'axis-label', x: x(t), y: height - 6, 'text-anchor': 'middle' }, clock(t, ts < 60)));
    }
    if (samples.length < 2) {
      svg.append(s('text', { class: 'nodata', x: (m.l + width) / 2, y: height / 2, 'text-anchor': 'middle' },
        samples.length ? 'Collecting samples…' : 'No data yet'));
    }
    const gap = 20000;
    this.series.forEach((se, i) => {
      if (this.hist.hidden.has(se.key) || samples.length < 2) return;
      let d = '';
      let prev = null;
      for (const sm of samples) {
        const v = sm.v[se.key];
        if (v == null) { prev = null; continue; }
        const px = Math.max(m.l, x(sm.t)).toFixed(1);
        d += `${prev && sm.t - prev.t < gap ? 'L' : 'M'}${px} ${y(v).toFixed(1)}`;
        prev = sm;
      }
      svg.append(s('path', { class: `line s${(i % 8) + 1}`, d, dataset: { series: se.key } }));
    });
    const cursor = s('g', { class: 'hover' });
    svg.append(cursor);
    const overlay = s('rect', { x: m.l, y: m.t, width: Math.max(0, width - m.l - m.r), height: height - m.t - m.b, fill: 'transparent' });
    svg.append(overlay);
    overlay.addEventListener('mousemove', (ev) => this.hover(ev, svg, cursor, samples, x, y));
    overlay.addEventListener('mouseleave', () => { cursor.replaceChildren(); if (this.tip) this.tip.hidden = true; });
    this.plot.replaceChildren(svg);
    this.tip = h('div', { class: 'tooltip', hidden: true });
    this.plot.append(this.tip);
    this.renderLegend();
  }

  hover(ev, svg, cursor, samples, x, y) {
    if (!samples.length) return;
    const rect = svg.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) / rect.width) * this.width;
    let best = samples[0];
    for (const sm of samples) if (Math.abs(x(sm.t) - px) < Math.abs(x(best.t) - px)) best = sm;
    const cx = x(best.t);
    cursor.replaceChildren(s('line', { class: 'cursor', x1: cx, x2: cx, y1: 10, y2: this.height - 24 }));
    const rows = [];
    this.series.forEach((se, i) => {
      if (this.hist.hidden.has(se.key)) return;
      const v = best.v[se.key];
      if (v == null) return;
      cursor.append(s('circle', { class: `dot s${(i % 8) + 1}`, cx, cy: y(v), r: 3.5 }));
      rows.push(h('div', { class: 'r' }, h('span', null, h('i', { class: `swatch s${(i % 8) + 1}` }), se.label), h('b', null, this.format(v))));
    });
    clear(this.tip, h('div', { class: 't' }, clock(best.t)), rows);
    this.tip.hidden = false;
    const left = (cx / this.width) * rect.width;
    const tw = this.tip.offsetWidth;
    this.tip.style.left = (left + 14 + tw > rect.width ? left - tw - 14 : left + 14) + 'px';
    this.tip.style.top = '8px';
  }

  renderLegend() {
    const last = this.hist.samples[this.hist.samples.length - 1];
    const shown = this.legend.children;
    if (shown.length === this.series.length) {
      // Updated in place: a click on a legend entry is never lost to a refresh.
      this.series.forEach((se, i) => {
        const v = last ? last.v[se.key] : null;
        const off = this.hist.hidden.has(se.key);
        const b = shown[i];
        b.className = off ? 'off' : '';
        b.setAttribute('aria-pressed', String(!off));
        b.title = off ? 'Show' : 'Hide';
        b.dataset.value = v == null ? '' : String(v);
        b.querySelector('.val').textContent = v == null ? '—' : this.format(v);
      });
      return;
    }
    this.legend.replaceChildren(...this.series.map((se, i) => {
      const v = last ? last.v[se.key] : null;
      const off = this.hist.hidden.has(se.key);
      return h('button', {
        type: 'button', class: off ? 'off' : null, 'aria-pressed': String(!off), title: off ? 'Show' : 'Hide',
        dataset: { series: se.key, value: v == null ? '' : String(v) },
        onclick: () => {
          if (this.hist.hidden.has(se.key)) this.hist.hidden.delete(se.key); else this.hist.hidden.add(se.key);
          this.render();
        },
      }, h('span', { class: `swatch s${(i % 8) + 1}` }), se.label, h('span', { class: 'val' }, v == null ? '—' : this.format(v)));
    }));
  }
}
