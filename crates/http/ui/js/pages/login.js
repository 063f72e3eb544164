// The login page: checks the credentials against the API (GET /api/whoami) and keeps
// them for the session.

import { basicToken, get, saveCredentials } from '../api.js';
import { h } from '../dom.js';

export function page({ message, user, done }) {
  const username = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, value: user || '', autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password' });
  const error = h('div', { class: 'form-error', role: 'alert', id: 'login-error', hidden: !message }, message || '');
  const btn = h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Log in');
  const form = h('form', { class: 'login-card', novalidate: true },
    h('div', { class: 'brand' }, h('img', { src: logoSrc(), alt: '' }), 'Warren'),
    h('div', { class: 'tagline' }, 'Management console'),
    h('label', { for: 'login-username' }, 'Username'), username,
    h('label', { for: 'login-password' }, 'Password'), password,
    btn,
    error,
    h('div', { class: 'note' }, 'Users need a management tag (management, policymaker, monitoring or administrator).'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    if (!username.value) {
      error.hidden = false;
      error.textContent = 'Enter a username.';
      username.focus();
      return;
    }
    btn.disabled = true;
    btn.classList.add('busy');
    const token = basicToken(username.value, password.value);
    try {
      await get('/whoami', { token });
      saveCredentials(username.value, token);
      done();
    } catch (err) {
      error.hidden = false;
      error.textContent = err.status === 401
        ? (err.reason === 'Login failed' ? 'Login failed: wrong username or password.' : `Login failed: ${err.reason}`)
        : `${err.reason || err.message}`;
      password.select();
    } finally {
      btn.disabled = false;
      btn.classList.remove('busy');
    }
  });
  setTimeout(() => (user ? password : username).focus(), 0);
  return h('div', { class: 'login-page' }, form);
}

function logoSrc() {
  const link = document.querySelector('link[rel=icon]');
  return link ? link.getAttribute('href') : '';
}
