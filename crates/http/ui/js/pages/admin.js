// Admin: users (tags, permissions, topic permissions), virtual hosts, policies, and
// definitions export and import.

import { del, enc, get, post, put } from '../api.js';
import { ArgsEditor, POLICY_KEYS } from '../args.js';
import { act, card, chip, confirm, download, empty, formDialog, h, icon, kv, pageHead, swap, toast } from '../dom.js';
import { num, rate, rateOf, value } from '../fmt.js';
import { buttons, input, row, select, vhostSelect } from '../forms.js';
import { defaultVhost, isAdmin, navigate, refreshNow, route, state } from '../state.js';
import { simpleTable } from '../table.js';

const SECTIONS = [['users', 'Users', '#/users'], ['vhosts', 'Virtual hosts', '#/vhosts'], ['policies', 'Policies', '#/policies'], ['definitions', 'Definitions', '#/definitions']];

function subnav(active) {
  return h('nav', { class: 'subnav', 'aria-label': 'Admin sections' },
    SECTIONS.filter(([id]) => isAdmin() || id === 'policies').map(([id, label, href]) =>
      h('a', { href, class: id === active ? 'active' : null, 'aria-current': id === active ? 'page' : null }, label)));
}

const tagsOf = (u) => (Array.isArray(u.tags) ? u.tags : String(u.tags || '').split(',').filter(Boolean));
const TAGS = ['administrator', 'monitoring', 'policymaker', 'management', 'impersonator'];

function tagChips(tags) {
  return tags.length ? h('span', { class: 'chips' }, tags.map((t) => chip(t, t === 'administrator' ? 'accent' : 'info'))) : h('span', { class: 'faint' }, 'no tags');
}

/** A tags input with one-click tag buttons. */
function tagsInput(initial = '') {
  const inp = input('tags', { value: initial, placeholder: 'comma-separated, e.g. administrator' });
  const quick = h('div', { class: 'quick' }, 'Set', TAGS.map((t) => h('button', { type: 'button', class: 'chip', onclick: () => {
    const cur = inp.value.split(',').map((x) => x.trim()).filter(Boolean);
    inp.value = (cur.includes(t) ? cur.filter((x) => x !== t) : [...cur, t]).join(', ');
  } }, t)));
  return { inp, el: h('div', { class: 'kvedit' }, inp, quick) };
}

const splitTags = (s) => s.split(',').map((t) => t.trim()).filter(Boolean).join(',');

// ---------- users ----------

function addUser() {
  const name = input('username', { required: true, autocomplete: 'off' });
  const pass = input('password', { type: 'password', autocomplete: 'new-password' });
  const pass2 = input('password-confirm', { type: 'password', autocomplete: 'new-password' });
  const tags = tagsInput('');
  return formDialog({
    title: 'Add a user',
    submitText: 'Add user',
    fields: [row('Username', name), row('Password', pass), row('Confirm password', pass2), row('Tags', tags.el, 'Without a management tag the user can use AMQP but not this UI.')],
    submit: async () => {
      if (!name.value.trim()) throw new Error('Enter a username.');
      if (pass.value !== pass2.value) throw new Error('The passwords do not match.');
      const body = { tags: splitTags(tags.inp.value) };
      if (pass.value) body.password = pass.value; else body.password_hash = '';
      await put(`/users/${enc(name.value)}`, body);
      toast('ok', 'User added', name.value);
      return name.value;
    },
  });
}

async function deleteUser(name, button) {
  const self = name === state.user;
  const ok = await confirm({ title: 'Delete this user?', text: self ? `You are logged in as "${name}": deleting it ends your session.` : `User "${name}" and its permissions will be deleted.` });
  if (!ok) return false;
  return !!await act(button, () => del(`/users/${enc(name)}`).then(() => true), 'User deleted', name, 'Delete failed');
}

export function users() {
  const body = h('div');
  const add = h('button', { type: 'button', class: 'primary', id: 'add-user', onclick: async () => { if (await addUser()) refreshNow(); } }, '+ Add user');
  const el = h('div', null, pageHead({ title: 'Admin', sub: 'Users, virtual hosts, policies and definitions', actions: [add] }), subnav('users'),
    card({ title: 'Users', body, flush: true }));
  async function refresh() {
    const [list, perms] = await Promise.all([get('/users'), get('/permissions')]);
    const access = new Map();
    for (const p of perms) access.set(p.user, [...(access.get(p.user) || []), p.vhost]);
    swap(body, simpleTable([
      { title: 'Name', cls: 'name', render: (u) => h('a', { href: route('users', u.name) }, u.name) },
      { title: 'Tags', render: (u) => tagChips(tagsOf(u)) },
      { title: 'Can access virtual hosts', render: (u) => {
        const v = access.get(u.name) || [];
        return v.length ? h('span', { class: 'chips' }, v.map((x) => chip(x, 'mono'))) : h('span', { class: 'faint' }, 'no access');
      } },
      { title: 'Password', render: (u) => (u.password_hash ? 'set' : h('span', { class: 'faint' }, 'none')) },
      { title: '', cls: 'actions', render: (u) => h('button', { type: 'button', class: 'small danger', onclick: async (e) => {
        if (await deleteUser(u.name, e.target)) refreshNow();
      } }, 'Delete') },
    ], list.sort((a, b) => a.name.localeCompare(b.name)), empty({ iconName: 'user', title: 'No users', text: 'Add a user to let clients and people log in.' }),
    (u) => ({ dataset: { name: u.name } })));
  }
  return { el, refresh, title: 'Users' };
}

function permissionForm({ user, vhost, topic }) {
  const v = vhost === undefined ? vhostSelect('vhost', defaultVhost()) : null;
  const u = user === undefined ? input('user', { required: true, placeholder: 'username' }) : null;
  const fields = topic
    ? { exchange: input('exchange', { value: 'amq.topic' }), write: input('write', { value: '.*' }), read: input('read', { value: '.*' }) }
    : { configure: input('configure', { value: '.*' }), write: input('write', { value: '.*' }), read: input('read', { value: '.*' }) };
  const btn = h('button', { type: 'submit', class: 'primary' }, topic ? 'Set topic permission' : 'Set permission');
  const form = h('form', { class: 'form perm-form' },
    v ? row('Virtual host', v) : null,
    u ? row('User', u) : null,
    Object.entries(fields).map(([k, f]) => row(k[0].toUpperCase() + k.slice(1), f, k === 'exchange' ? null : 'A regular expression; empty denies, .* allows everything.')),
    buttons(btn));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const vh = vhost ?? v.value;
    const us = user ?? u.value;
    const body = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.value]));
    const done = await act(btn, () => put(`/${topic ? 'topic-permissions' : 'permissions'}/${enc(vh)}/${enc(us)}`, body).then(() => true),
      'Permission set', `${us} in ${vh}`, 'Set permission failed');
    if (done) refreshNow();
  });
  return form;
}

function permTable(list, { show, topic }) {
  return simpleTable([
    show === 'vhost'
      ? { title: 'Virtual host', cls: 'name', render: (p) => h('a', { href: route('vhosts', p.vhost) }, p.vhost) }
      : { title: 'User', cls: 'name', render: (p) => h('a', { href: route('users', p.user) }, p.user) },
    ...(topic
      ? [{ title: 'Exchange', render: (p) => h('code', null, p.exchange) }]
      : [{ title: 'Configure', render: (p) => h('code', null, p.configure || '(none)') }]),
    { title: 'Write', render: (p) => h('code', null, p.write || '(none)') },
    { title: 'Read', render: (p) => h('code', null, p.read || '(none)') },
    { title: '', cls: 'actions', render: (p) => h('button', { type: 'button', class: 'small danger', onclick: async (e) => {
      const path = topic ? `/topic-permissions/${enc(p.vhost)}/${enc(p.user)}` : `/permissions/${enc(p.vhost)}/${enc(p.user)}`;
      const done = await act(e.target, () => del(path).then(() => true), 'Permission cleared', `${p.user} in ${p.vhost}`, 'Clear failed');
      if (done) refreshNow();
    } }, 'Clear') },
  ], list, empty({ small: true, iconName: 'policy', title: topic ? 'No topic permissions' : 'No permissions', text: topic ? 'Without topic permissions, topic exchanges are not restricted.' : 'Without a permission, no access.' }));
}

export function user(name) {
  const head = h('div');
  const info = h('div');
  const perms = h('div');
  const topics = h('div');
  const tags = tagsInput('');
  const pass = input('password', { type: 'password', autocomplete: 'new-password', placeholder: 'leave empty to keep it' });
  const updBtn = h('button', { type: 'submit', class: 'primary' }, 'Update user');
  const upd = h('form', { class: 'form' }, row('Tags', tags.el), row('New password', pass), buttons(updBtn));
  upd.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { tags: splitTags(tags.inp.value) };
    if (pass.value) body.password = pass.value;
    const done = await act(updBtn, () => put(`/users/${enc(name)}`, body).then(() => true), 'User updated', name, 'Update failed');
    if (done) { pass.value = ''; refreshNow(); }
  });
  let current = {};
  let filled = false;
  const el = h('div', null, head, subnav('users'),
    h('div', { class: 'grid sidebar' },
      h('div', null,
        card({ title: 'Permissions', body: [perms, h('div', { class: 'card-body' }, h('h3', null, 'Set permission'), h('div', { style: { marginTop: '10px' } }, permissionForm({ user: name })))], flush: true, id: 'permissions-card' }),
        card({ title: 'Topic permissions', body: [topics, h('div', { class: 'card-body' }, h('h3', null, 'Set topic permission'), h('div', { style: { marginTop: '10px' } }, permissionForm({ user: name, topic: true })))], flush: true })),
      h('div', null, card({ title: 'Details', body: info }), card({ title: 'Update this user', body: upd }))));
  let gone = false;
  async function refresh() {
    if (gone) return;
    try {
      current = await get(`/users/${enc(name)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      gone = true;
      el.replaceChildren(pageHead({ crumbs: [['Users', '#/users']], title: name }), card({ body: empty({ iconName: 'user', title: 'No such user', cta: h('a', { href: '#/users' }, 'Back to users') }) }));
      return;
    }
    const [p, tp] = await Promise.all([get(`/users/${enc(name)}/permissions`), get(`/users/${enc(name)}/topic-permissions`)]);
    const delBtn = h('button', { type: 'button', class: 'danger', id: 'delete-user', onclick: async (e) => { if (await deleteUser(name, e.target)) navigate('#/users'); } }, 'Delete user');
    head.replaceChildren(pageHead({ crumbs: [['Admin', '#/users'], ['Users', '#/users']], title: name, badges: tagChips(tagsOf(current)), actions: [delBtn] }));
    if (!filled) { tags.inp.value = tagsOf(current).join(', '); filled = true; }
    info.replaceChildren(kv([
      ['Tags', tagChips(tagsOf(current))],
      ['Password', current.password_hash ? 'set' : 'none (cannot log in with a password)'],
      ['Hashing', current.hashing_algorithm || '—'],
      ['Limits', Object.keys(current.limits || {}).length ? value(current.limits) : 'none'],
    ]));
    swap(perms, permTable(p, { show: 'vhost' }));
    swap(topics, permTable(tp, { show: 'vhost', topic: true }));
  }
  return { el, refresh, title: name };
}

// ---------- virtual hosts ----------

function addVhost() {
  const name = input('name', { required: true });
  const description = input('description', { placeholder: 'optional' });
  const tags = input('tags', { placeholder: 'comma-separated, optional' });
  return formDialog({
    title: 'Add a virtual host',
    submitText: 'Add virtual host',
    fields: [row('Name', name), row('Description', description), row('Tags', tags)],
    submit: async () => {
      if (!name.value.trim()) throw new Error('Enter a name.');
      await put(`/vhosts/${enc(name.value)}`, { description: description.value, tags: splitTags(tags.value) });
      toast('ok', 'Virtual host added', `${name.value}. Give users permissions on it to use it.`);
      return name.value;
    },
  });
}

async function deleteVhost(name, button) {
  const ok = await confirm({ title: 'Delete this virtual host?', text: `Virtual host "${name}" and everything in it (exchanges, queues and their messages, bindings, permissions, policies) will be deleted. Its connections are closed.` });
  if (!ok) return false;
  return !!await act(button, () => del(`/vhosts/${enc(name)}`).then(() => true), 'Virtual host deleted', name, 'Delete failed');
}

export function vhosts() {
  const body = h('div');
  const add = h('button', { type: 'button', class: 'primary', id: 'add-vhost', onclick: async () => { if (await addVhost()) refreshNow(); } }, '+ Add virtual host');
  const el = h('div', null, pageHead({ title: 'Admin', sub: 'Users, virtual hosts, policies and definitions', actions: [add] }), subnav('vhosts'),
    card({ title: 'Virtual hosts', body, flush: true }));
  async function refresh() {
    const [list, perms] = await Promise.all([get('/vhosts'), get('/permissions')]);
    const users = new Map();
    for (const p of perms) users.set(p.vhost, [...(users.get(p.vhost) || []), p.user]);
    swap(body, simpleTable([
      { title: 'Name', cls: 'name', render: (v) => [h('a', { href: route('vhosts', v.name) }, v.name), v.description ? h('span', { class: 'secondary' }, v.description) : null] },
      { title: 'Users', render: (v) => {
        const u = users.get(v.name) || [];
        return u.length ? h('span', { class: 'chips' }, u.map((x) => chip(x, 'mono'))) : h('span', { class: 'faint' }, 'nobody');
      } },
      { title: 'Tags', render: (v) => (tagsOf(v).length ? h('span', { class: 'chips' }, tagsOf(v).map((t) => chip(t))) : h('span', { class: 'faint' }, '—')) },
      { group: 'Messages', title: 'Ready', num: true, render: (v) => num(v.messages_ready ?? 0) },
      { group: 'Messages', title: 'Unacked', num: true, render: (v) => num(v.messages_unacknowledged ?? 0) },
      { group: 'Messages', title: 'Total', num: true, render: (v) => num(v.messages ?? 0) },
      { group: 'Message rates', title: 'Publish', num: true, render: (v) => rate(rateOf(v.message_stats, 'publish')) },
      { group: 'Message rates', title: 'Deliver / get', num: true, render: (v) => rate(rateOf(v.message_stats, 'deliver_get')) },
      { title: '', cls: 'actions', render: (v) => h('button', { type: 'button', class: 'small danger', onclick: async (e) => {
        if (await deleteVhost(v.name, e.target)) refreshNow();
      } }, 'Delete') },
    ], list, empty({ iconName: 'vhost', title: 'No virtual hosts' }), (v) => ({ dataset: { name: v.name } })));
  }
  return { el, refresh, title: 'Virtual hosts' };
}

export function vhost(name) {
  const head = h('div');
  const info = h('div');
  const perms = h('div');
  const el = h('div', null, head, subnav('vhosts'),
    h('div', { class: 'grid sidebar' },
      card({ title: 'Permissions', body: [perms, h('div', { class: 'card-body' }, h('h3', null, 'Set permission'), h('div', { style: { marginTop: '10px' } }, permissionForm({ vhost: name })))], flush: true, id: 'permissions-card' }),
      card({ title: 'Details', body: info })));
  let gone = false;
  async function refresh() {
    if (gone) return;
    let v;
    try {
      v = await get(`/vhosts/${enc(name)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      gone = true;
      el.replaceChildren(pageHead({ crumbs: [['Virtual hosts', '#/vhosts']], title: name }), card({ body: empty({ iconName: 'vhost', title: 'No such virtual host', cta: h('a', { href: '#/vhosts' }, 'Back to virtual hosts') }) }));
      return;
    }
    const p = await get(`/vhosts/${enc(name)}/permissions`);
    const delBtn = h('button', { type: 'button', class: 'danger', id: 'delete-vhost', onclick: async (e) => { if (await deleteVhost(name, e.target)) navigate('#/vhosts'); } }, 'Delete virtual host');
    head.replaceChildren(pageHead({ crumbs: [['Admin', '#/users'], ['Virtual hosts', '#/vhosts']], title: name, actions: [delBtn] }));
    info.replaceChildren(kv([
      ['Description', v.description || '—'],
      ['Tags', tagsOf(v).join(', ') || '—'],
      ['Messages', `${num(v.messages ?? 0)} (${num(v.messages_ready ?? 0)} ready, ${num(v.messages_unacknowledged ?? 0)} unacked)`],
      ['Publish rate', rate(rateOf(v.message_stats, 'publish'))],
      ['Tracing', v.tracing ? 'on' : 'off'],
    ]));
    swap(perms, permTable(p, { show: 'user' }));
  }
  return { el, refresh, title: name };
}

// ---------- policies ----------

function policyDialog(existing) {
  const vhost = vhostSelect('vhost', existing ? existing.vhost : defaultVhost());
  const name = input('name', { required: true, value: existing ? existing.name : '' });
  const pattern = input('pattern', { required: true, value: existing ? existing.pattern : '', placeholder: 'e.g. ^orders\\.' });
  const applyTo = select('apply-to', [['all', 'Exchanges and queues'], ['queues', 'Queues'], ['exchanges', 'Exchanges']], existing ? existing['apply-to'] : 'queues');
  const priority = input('priority', { type: 'number', value: existing ? String(existing.priority) : '0', class: 'short' });
  const def = new ArgsEditor({ name: 'def', quick: POLICY_KEYS, initial: existing ? existing.definition : {} });
  if (existing) { vhost.disabled = true; name.readOnly = true; }
  return formDialog({
    title: existing ? `Edit policy ${existing.name}` : 'Add a policy',
    submitText: existing ? 'Update policy' : 'Add policy',
    fields: [row('Virtual host', vhost), row('Name', name), row('Pattern', pattern, 'A regular expression matched against exchange or queue names.'),
      row('Apply to', applyTo), row('Priority', priority, 'When several policies match, the highest priority wins.'), row('Definition', def.el)],
    submit: async () => {
      if (!name.value.trim()) throw new Error('Enter a name.');
      const definition = def.value();
      if (!Object.keys(definition).length) throw new Error('A policy needs at least one key in its definition.');
      await put(`/policies/${enc(vhost.value)}/${enc(name.value)}`, { pattern: pattern.value, 'apply-to': applyTo.value, priority: Number(priority.value) || 0, definition });
      toast('ok', existing ? 'Policy updated' : 'Policy added', `${name.value} in ${vhost.value}`);
      return true;
    },
  });
}

export function policies() {
  const body = h('div');
  const add = h('button', { type: 'button', class: 'primary', id: 'add-policy', onclick: async () => { if (await policyDialog()) refreshNow(); } }, '+ Add policy');
  const el = h('div', null, pageHead({ title: 'Admin', sub: 'Users, virtual hosts, policies and definitions', actions: [add] }), subnav('policies'),
    card({ title: 'Policies', body, flush: true }));
  async function refresh() {
    const list = await get(state.vhost ? `/policies/${enc(state.vhost)}` : '/policies');
    swap(body, simpleTable([
      { title: 'Virtual host', render: (p) => p.vhost },
      { title: 'Name', cls: 'name', render: (p) => p.name },
      { title: 'Pattern', render: (p) => h('code', null, p.pattern) },
      { title: 'Apply to', render: (p) => p['apply-to'] },
      { title: 'Definition', render: (p) => h('span', { class: 'chips' }, Object.entries(p.definition || {}).map(([k, v]) => chip(`${k}: ${value(v)}`, 'mono'))) },
      { title: 'Priority', num: true, render: (p) => String(p.priority) },
      { title: '', cls: 'actions', render: (p) => [
        h('button', { type: 'button', class: 'small', onclick: async () => { if (await policyDialog(p)) refreshNow(); } }, 'Edit'),
        h('button', { type: 'button', class: 'small danger', onclick: async (e) => {
          const ok = await confirm({ title: 'Delete this policy?', text: `Policy "${p.name}" in ${p.vhost} stops applying at once.` });
          if (!ok) return;
          const done = await act(e.target, () => del(`/policies/${enc(p.vhost)}/${enc(p.name)}`).then(() => true), 'Policy deleted', p.name, 'Delete failed');
          if (done) refreshNow();
        } }, 'Delete')] },
    ], list.sort((a, b) => a.vhost.localeCompare(b.vhost) || a.name.localeCompare(b.name)),
    empty({ iconName: 'policy', title: 'No policies', text: 'Policies set TTLs, length limits, dead-lettering and more on every queue or exchange whose name matches a pattern.' }),
    (p) => ({ dataset: { name: p.name } })));
  }
  return { el, refresh, title: 'Policies' };
}

// ---------- definitions ----------

export function definitions() {
  const exVhost = vhostSelect('vhost', '', { all: true });
  const exBtn = h('button', { type: 'button', class: 'primary', id: 'export-definitions' }, icon('download'), 'Download definitions');
  exBtn.addEventListener('click', async () => {
    const v = exVhost.value;
    const defs = await act(exBtn, () => get(v ? `/definitions/${enc(v)}` : '/definitions'), null, null, 'Export failed');
    if (!defs) return;
    const host = (state.overview && state.overview.cluster_name || 'warren').replace(/[^A-Za-z0-9_.-]+/g, '_');
    const date = new Date().toISOString().slice(0, 10);
    const file = `${host}${v ? '_' + v.replace(/[^A-Za-z0-9_.-]+/g, '_') : ''}_${date}.json`;
    download(file, JSON.stringify(defs, null, 2) + '\n');
    toast('ok', 'Definitions exported', file);
  });
  const file = h('input', { type: 'file', accept: '.json,application/json', name: 'file', id: 'import-file' });
  const imVhost = vhostSelect('vhost', '', { all: true });
  const imBtn = h('button', { type: 'submit', class: 'primary', id: 'import-definitions' }, icon('upload'), 'Upload definitions');
  const imForm = h('form', { class: 'form' },
    row('Definitions file', h('div', { class: 'file-drop' }, file)),
    row('Into', imVhost, 'All virtual hosts imports the whole file; a virtual host imports its exchanges, queues, bindings and policies into it.'),
    buttons(imBtn));
  imForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = file.files && file.files[0];
    if (!f) { toast('error', 'Import failed', 'Choose a definitions file first.'); return; }
    const text = await f.text();
    try { JSON.parse(text); } catch (err) { toast('error', 'Import failed', `${f.name} is not JSON: ${err.message}`); return; }
    const v = imVhost.value;
    const done = await act(imBtn, () => post(v ? `/definitions/${enc(v)}` : '/definitions', text).then(() => true), 'Definitions imported', f.name, 'Import failed');
    if (done) { file.value = ''; refreshNow(); }
  });
  const el = h('div', null, pageHead({ title: 'Admin', sub: 'Users, virtual hosts, policies and definitions' }), subnav('definitions'),
    h('div', { class: 'grid two' },
      card({ title: 'Export definitions', id: 'export-card', body: [
        h('p', { class: 'muted', style: { marginTop: 0 } }, 'Users, virtual hosts, permissions, policies, exchanges, queues and bindings as JSON, in RabbitMQ\'s definitions format (messages are not included).'),
        h('div', { class: 'form' }, row('Virtual host', exVhost), buttons(exBtn))] }),
      card({ title: 'Import definitions', id: 'import-card', body: [
        h('p', { class: 'muted', style: { marginTop: 0 } }, 'Definitions exported from Warren or RabbitMQ. Existing objects are kept; objects in the file are added or updated.'),
        imForm] })));
  return { el, refresh: async () => {}, title: 'Definitions' };
}
