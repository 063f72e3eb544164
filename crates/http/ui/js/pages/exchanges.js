// Exchanges: the list, adding one, and an exchange's page (bindings both ways, binding,
// publishing a message, deleting).

import { del, enc, exSeg, get, put, query } from '../api.js';
import { ArgsEditor, EXCHANGE_ARGS } from '../args.js';
import { act, card, chip, confirm, empty, formDialog, h, kv, pageHead, swap, toast } from '../dom.js';
import { rate, rateOf, value, yes } from '../fmt.js';
import { bindForm, bindingsTable, checkbox, featureChips, input, publishForm, row, select, vhostSelect } from '../forms.js';
import { defaultVhost, navigate, refreshNow, route, state } from '../state.js';
import { ListTable } from '../table.js';

export const displayName = (name) => (name === '' ? '(AMQP default)' : name);

function exchangeTypes() {
  const types = (state.overview && state.overview.exchange_types || []).map((t) => t.name);
  return types.length ? types : ['direct', 'fanout', 'headers', 'topic'];
}

/** The dialog adding an exchange; resolves with [vhost, name] once added. */
export function addExchange() {
  const vhost = vhostSelect('vhost', defaultVhost());
  const name = input('name', { required: true, placeholder: 'e.g. orders' });
  const type = select('type', exchangeTypes(), 'direct');
  const durable = select('durable', [['true', 'Durable'], ['false', 'Transient']], 'true');
  const autoDelete = select('auto_delete', [['false', 'No'], ['true', 'Yes']], 'false');
  const internal = select('internal', [['false', 'No'], ['true', 'Yes']], 'false');
  const args = new ArgsEditor({ name: 'x-arg', quick: EXCHANGE_ARGS });
  return formDialog({
    title: 'Add a new exchange',
    submitText: 'Add exchange',
    fields: [
      row('Virtual host', vhost),
      row('Name', name),
      row('Type', type),
      row('Durability', durable),
      row('Auto delete', autoDelete, 'Deleted when its last binding is removed.'),
      row('Internal', internal, 'Clients cannot publish to it directly, only through exchange-to-exchange bindings.'),
      row('Arguments', args.el),
    ],
    submit: async () => {
      if (!name.value.trim()) throw new Error('Enter a name for the exchange.');
      await put(`/exchanges/${enc(vhost.value)}/${enc(name.value)}`, {
        type: type.value, durable: durable.value === 'true', auto_delete: autoDelete.value === 'true',
        internal: internal.value === 'true', arguments: args.value(),
      });
      toast('ok', 'Exchange added', `${name.value} (${type.value}) in ${vhost.value}`);
      return [vhost.value, name.value];
    },
  });
}

export function list() {
  const table = new ListTable({
    id: 'exchanges',
    noun: 'exchanges',
    path: () => (state.vhost ? `/exchanges/${enc(state.vhost)}` : '/exchanges'),
    columns: [
      { title: 'Virtual host', sort: 'vhost', render: (x) => x.vhost, optional: () => !state.vhost },
      { title: 'Name', sort: 'name', cls: 'name', render: (x) => h('a', { href: route('exchanges', x.vhost, x.name || 'amq.default') }, displayName(x.name)) },
      { title: 'Type', sort: 'type', render: (x) => chip(x.type, 'mono') },
      { title: 'Features', render: featureChips },
      { group: 'Message rates', title: 'In', num: true, sort: 'message_stats.publish_in_details.rate', render: (x) => rate(rateOf(x.message_stats, 'publish_in')), optional: (items) => items.some((x) => x.message_stats) },
      { group: 'Message rates', title: 'Out', num: true, sort: 'message_stats.publish_out_details.rate', render: (x) => rate(rateOf(x.message_stats, 'publish_out')), optional: (items) => items.some((x) => x.message_stats) },
    ],
    emptyState: empty({ iconName: 'exchange', title: 'No exchanges', text: 'This virtual host has no exchanges you can see.' }),
  });
  const add = h('button', { type: 'button', class: 'primary', id: 'add-exchange', onclick: async () => {
    if (await addExchange()) refreshNow();
  } }, '+ Add exchange');
  const el = h('div', null,
    pageHead({ title: 'Exchanges', sub: state.vhost ? `Virtual host ${state.vhost}` : 'All virtual hosts', actions: [add] }),
    card({ body: table.el, flush: true }));
  return { el, refresh: () => table.refresh(), title: 'Exchanges' };
}

export function detail(vhost, seg) {
  const name = seg === 'amq.default' ? '' : seg;
  const isDefault = name === '';
  const head = h('div');
  const info = h('div');
  const from = h('div');
  const to = h('div');
  const el = h('div', null, head,
    h('div', { class: 'grid sidebar' },
      h('div', null,
        card({ title: 'Bindings from this exchange', body: [from, isDefault ? null : h('div', { class: 'card-body' }, h('h3', null, 'Add binding from this exchange'), h('div', { style: { marginTop: '10px' } }, bindForm({ vhost, exchange: name })))], flush: true, id: 'bindings-card' }),
        isDefault ? null : card({ title: 'Bindings to this exchange', body: to, flush: true })),
      card({ title: 'Details', body: info })),
    card({ title: 'Publish message', body: publishForm({ vhost, exchange: name }), id: 'publish-card' }));
  let gone = false;

  async function refresh() {
    if (gone) return;
    let x;
    try {
      x = await get(`/exchanges/${enc(vhost)}/${exSeg(name)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      gone = true;
      el.replaceChildren(pageHead({ crumbs: [['Exchanges', '#/exchanges'], [vhost, null]], title: displayName(name) }),
        card({ body: empty({ iconName: 'exchange', title: 'This exchange does not exist', text: `There is no exchange "${name}" in virtual host ${vhost}.`, cta: h('a', { href: '#/exchanges' }, 'Back to exchanges') }) }));
      return;
    }
    const [source, dest] = isDefault ? [[], []] : await Promise.all([
      get(`/exchanges/${enc(vhost)}/${exSeg(name)}/bindings/source`),
      get(`/exchanges/${enc(vhost)}/${exSeg(name)}/bindings/destination`),
    ]);
    const delBtn = isDefault || name.startsWith('amq.') ? null : h('button', { type: 'button', class: 'danger', id: 'delete-exchange', onclick: (e) => remove(e.target) }, 'Delete');
    head.replaceChildren(pageHead({
      crumbs: [['Exchanges', '#/exchanges'], [vhost, null]],
      title: displayName(name),
      badges: chip(x.type, 'mono'),
      actions: delBtn ? [delBtn] : [],
    }));
    const args = Object.entries(x.arguments || {});
    info.replaceChildren(kv([
      ['Type', x.type],
      ['Virtual host', vhost],
      ['Durable', yes(x.durable)],
      ['Auto delete', yes(x.auto_delete)],
      ['Internal', yes(x.internal)],
      ['Arguments', args.length ? h('span', { class: 'chips' }, args.map(([k, v]) => chip(`${k}: ${value(v)}`, 'mono'))) : '—'],
      ['Policy', x.policy || '—'],
    ]));
    if (isDefault) {
      from.replaceChildren(h('div', { class: 'card-body' }, empty({ small: true, iconName: 'binding', title: 'Bound to every queue', text: 'The default exchange routes a message to the queue named by its routing key; its bindings cannot be changed.' })));
    } else {
      swap(from, bindingsTable(source, { side: 'destination', vhost }));
      swap(to, bindingsTable(dest, { side: 'source', vhost }));
    }
  }

  async function remove(button) {
    const ifUnused = checkbox('if-unused', 'Only if unused (no bindings from it)');
    const ok = await confirm({ title: 'Delete this exchange?', text: `Exchange "${name}" in ${vhost} and its bindings will be deleted.`, extra: ifUnused });
    if (!ok) return;
    const q = ifUnused.querySelector('input').checked ? query({ 'if-unused': 'true' }) : '';
    const done = await act(button, () => del(`/exchanges/${enc(vhost)}/${enc(name)}${q}`).then(() => true), 'Exchange deleted', name, 'Delete failed');
    if (done) navigate('#/exchanges');
  }

  return { el, refresh, title: displayName(name) };
}
