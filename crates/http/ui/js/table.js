// Tables: a live list paged, sorted and filtered by the API (RabbitMQ's `page`,
// `page_size`, `name`, `use_regex`, `sort`, `sort_reverse`), and a plain table for
// small lists that are sorted in the browser.

import { get, query } from './api.js';
import { empty, h, morphRows } from './dom.js';
import { num } from './fmt.js';

function headRows(columns, sorted, onSort) {
  const grouped = columns.some((c) => c.group);
  const th = (c, attrs = {}) => {
    const isSorted = c.sort && sorted && sorted.sort === c.sort;
    const el = h('th', {
      ...attrs,
      class: [c.num && 'num', c.sort && onSort && 'sortable', isSorted && 'sorted', isSorted && sorted.reverse && 'desc'],
      title: c.tip || null,
      scope: 'col',
      'aria-sort': isSorted ? (sorted.reverse ? 'descending' : 'ascending') : null,
    }, c.title);
    if (c.sort && onSort) el.addEventListener('click', () => onSort(c));
    return el;
  };
  if (!grouped) return [h('tr', null, columns.map((c) => th(c)))];
  const top = [];
  const bottom = [];
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i];
    if (!c.group) {
      top.push(th(c, { rowspan: 2 }));
      continue;
    }
    let n = 1;
    while (columns[i + n] && columns[i + n].group === c.group) n++;
    top.push(h('th', { colspan: n, class: 'group', scope: 'colgroup' }, c.group));
    for (let j = 0; j < n; j++) bottom.push(th(columns[i + j]));
    i += n - 1;
  }
  return [h('tr', null, top), h('tr', null, bottom)];
}

function cell(c, item) {
  const v = c.render(item);
  const zero = c.num && (v === '0' || v === '0.0/s');
  return h('td', { class: [c.num && 'num', c.cls, zero && 'zero'] }, v);
}

/** A plain table of `items` (columns: {title, render, num, cls}), or `emptyState`. */
export function simpleTable(columns, items, emptyState, rowAttrs) {
  if (!items.length) return emptyState;
  return h('div', { class: 'table-wrap' }, h('table', null,
    h('thead', null, headRows(columns)),
    h('tbody', null, items.map((it) => h('tr', rowAttrs ? rowAttrs(it) : null, columns.map((c) => cell(c, it)))))));
}

/**
 * A list the API pages: `path()` gives the endpoint (it may change with the vhost);
 * columns: {title, group, render, sort (API field), num, cls, optional(items)}.
 */
export class ListTable {
  constructor({ id, path, columns, noun, emptyState, defaultSort = 'name', pageSizes = [20, 50, 100, 500], extraQuery }) {
    this.id = id;
    this.path = path;
    this.columns = columns;
    this.noun = noun;
    this.emptyState = emptyState;
    this.extraQuery = extraQuery;
    const saved = JSON.parse(sessionStorage.getItem(`warren.list.${id}`) || '{}');
    this.st = { sort: defaultSort, reverse: false, page: 1, pageSize: 100, filter: '', regex: false, ...saved };
    this.pageSizes = pageSizes;

    this.filter = h('input', { type: 'search', placeholder: `Filter ${noun}…`, value: this.st.filter, 'aria-label': `Filter ${noun} by name`, name: 'filter' });
    let debounce = null;
    this.filter.addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => { this.st.filter = this.filter.value; this.st.page = 1; this.save(); this.refresh(); }, 250);
    });
    this.regex = h('input', { type: 'checkbox', checked: this.st.regex, name: 'regex' });
    this.regex.addEventListener('change', () => { this.st.regex = this.regex.checked; this.st.page = 1; this.save(); this.refresh(); });
    this.summary = h('span', { class: 'summary' });
    this.tools = h('div', { class: 'table-tools' },
      h('div', { class: 'search' }, this.filter),
      h('label', { class: 'checkline', title: 'Match names with a regular expression' }, this.regex, 'Regex'),
      this.summary);
    this.thead = h('thead');
    this.tbody = h('tbody');
    this.table = h('table', { class: 'list', dataset: { list: id } }, this.thead, this.tbody);
    this.wrap = h('div', { class: 'table-wrap' }, this.table);
    this.foot = h('div', { class: 'table-foot' });
    this.emptyHolder = h('div', { hidden: true });
    this.el = h('div', { class: 'list-table' }, this.tools, this.wrap, this.emptyHolder, this.foot);
    this.shownColumns = columns.filter((c) => !c.optional);
    this.drawHead();
    this.tbody.append(h('tr', null, h('td', { colspan: columns.length, class: 'loading' }, 'Loading…')));
  }

  save() {
    sessionStorage.setItem(`warren.list.${this.id}`, JSON.stringify(this.st));
  }

  drawHead() {
    const rows = headRows(this.shownColumns, this.st, (c) => {
      if (this.st.sort === c.sort) this.st.reverse = !this.st.reverse;
      else { this.st.sort = c.sort; this.st.reverse = !!c.num; }
      this.save();
      this.refresh();
    });
    // Redrawn only when it changes, so a click on a header is never lost to a refresh.
    if (rows.map((r) => r.outerHTML).join('') !== this.thead.innerHTML) this.thead.replaceChildren(...rows);
  }

  async refresh() {
    const q = {
      page: this.st.page, page_size: this.st.pageSize, name: this.st.filter, use_regex: this.st.regex ? 'true' : 'false',
      sort: this.st.sort, sort_reverse: this.st.reverse ? 'true' : 'false', ...(this.extraQuery || {}),
    };
    let res;
    try {
      res = await get(this.path() + query(q));
    } catch (err) {
      // A page past the end after deletions: go back to the first.
      if (err.status === 400 && this.st.page > 1) {
        this.st.page = 1;
        this.save();
        return this.refresh();
      }
      throw err;
    }
    const items = res.items || [];
    const shown = this.columns.filter((c) => !c.optional || c.optional(items));
    if (shown.length !== this.shownColumns.length) {
      this.shownColumns = shown;
    }
    this.drawHead();
    const total = res.total_count ?? items.length;
    const filtered = res.filtered_count ?? items.length;
    const nothing = total === 0;
    this.emptyHolder.hidden = !nothing;
    this.wrap.hidden = nothing;
    this.tools.hidden = nothing && !this.st.filter;
    this.foot.hidden = nothing || res.page_count <= 1 && filtered <= this.pageSizes[0];
    if (nothing) {
      if (!this.emptyHolder.firstChild) this.emptyHolder.append(this.emptyState);
      this.summary.textContent = '';
      return;
    }
    if (!filtered) {
      this.tbody.replaceChildren(h('tr', null, h('td', { colspan: this.shownColumns.length },
        empty({ small: true, title: `No ${this.noun} match “${this.st.filter}”`, text: 'Change or clear the filter.' }))));
    } else {
      const fresh = h('tbody', null, items.map((it) => h('tr', { dataset: { name: it.name ?? '' } }, this.shownColumns.map((c) => cell(c, it)))));
      if (this.tbody.querySelector('td.loading, .empty')) this.tbody.replaceChildren(...fresh.rows);
      else morphRows(this.tbody, fresh);
    }
    this.summary.textContent = filtered === total
      ? `${num(total)} ${this.noun}`
      : `${num(filtered)} of ${num(total)} ${this.noun}`;
    this.drawFoot(res, filtered);
  }

  drawFoot(res, filtered) {
    const pages = res.page_count || 1;
    const page = res.page || 1;
    const from = filtered ? (page - 1) * this.st.pageSize + 1 : 0;
    const to = Math.min(filtered, page * this.st.pageSize);
    const size = h('select', { 'aria-label': 'Rows per page' }, this.pageSizes.map((n) => h('option', { value: n, selected: n === this.st.pageSize }, `${n} per page`)));
    size.addEventListener('change', () => { this.st.pageSize = Number(size.value); this.st.page = 1; this.save(); this.refresh(); });
    const go = (p) => { this.st.page = p; this.save(); this.refresh(); };
    this.foot.replaceChildren(
      h('span', null, `Showing ${num(from)}–${num(to)} of ${num(filtered)}`),
      size,
      h('div', { class: 'pager' },
        h('button', { type: 'button', class: 'small', disabled: page <= 1, onclick: () => go(page - 1) }, '‹ Previous'),
        h('span', null, `Page ${num(page)} of ${num(pages)}`),
        h('button', { type: 'button', class: 'small', disabled: page >= pages, onclick: () => go(page + 1) }, 'Next ›')));
  }
}
