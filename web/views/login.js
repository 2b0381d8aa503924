/* login.js - the sign-in form (POST /api/auth/login). */
import * as api from '../api.js';
import { busy, field, h, showFormError } from '../dom.js';

/*
 * Render the sign-in form into root. onSignedIn() runs after a successful
 * login; message, when given, explains why the user is here (e.g. the
 * session ended).
 */
export function render(root, { onSignedIn, message }) {
  const email = field('Email', { name: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const summary = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
  const form = h('form', { class: 'card login-form', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', tabindex: '-1' }, 'Sign in to dialflow'),
    message ? h('p', { class: 'notice info', role: 'status' }, message) : null,
    summary, email.wrap, password.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const done = busy(form);
    try {
      await api.login(email.input.value.trim(), password.input.value);
      password.input.value = '';
      done();
      await onSignedIn();
    } catch (err) {
      done();
      if (err.code === 'invalid_credentials') {
        showFormError(form, { code: 'invalid_credentials', message: 'Wrong email or password.' });
        password.input.value = '';
        password.input.focus();
      } else {
        showFormError(form, err);
      }
      if (!err.code) console.error(err);
    }
  });

  root.replaceChildren(h('div', { class: 'login-page' }, form));
  email.input.focus();
}
