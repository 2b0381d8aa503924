/*
 * users.js - the users of the business in effect: the list (admin and up),
 * and for owners a create form (POST /api/users) and per-user role change
 * and deactivation (PATCH /api/users/{id}).
 */
import * as api from '../api.js';
import { assignableRoles, canManageUsers } from '../access.js';
import {
  busy, clearFormError, errorText, field, h, mount, nextId, option, pager, say, showFormError, table, time,
} from '../dom.js';

const PAGE_SIZES = [25, 50, 100, 200];

export function render(root, { me }) {
  const manage = canManageUsers(me);
  const state = { page: 1, pageSize: 50 };
  const messages = h('div', { class: 'messages' });
  const list = h('div', { class: 'list' });
  const sizeId = nextId('users-size');
  const size = h('select', { id: sizeId },
    PAGE_SIZES.map((n) => option(String(n), String(n), n === state.pageSize)));
  size.addEventListener('change', () => {
    state.pageSize = Number(size.value);
    state.page = 1;
    load();
  });

  mount(root,
    h('h1', { tabindex: '-1' }, 'Users'),
    h('p', { class: 'lead' }, `People who can sign in to ${me.business.name}.`),
    messages,
    manage ? createForm() : null,
    h('section', { 'aria-labelledby': 'users-list-title' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'users-list-title' }, 'All users'),
        h('div', { class: 'inline-field' }, h('label', { for: sizeId }, 'Per page'), size)),
      list),
  );
  load();

  async function load() {
    list.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get('/api/users', { page: state.page, page_size: state.pageSize });
      const last = Math.max(1, Math.ceil(data.total / data.page_size));
      if (data.items.length === 0 && data.page > last) {
        state.page = last;
        return load();
      }
      list.replaceChildren(
        data.items.length
          ? table(`Users of ${me.business.name}`,
            ['Name', 'Email', 'Role', 'Status', 'Last sign-in', 'Created', ...(manage ? ['Actions'] : [])],
            data.items.map(row))
          : h('p', {}, 'No users yet.'),
        pager(data, 'Users', (p) => {
          state.page = p;
          load();
        }),
      );
    } catch (err) {
      say(list, 'error', errorText(err));
    } finally {
      list.removeAttribute('aria-busy');
    }
    return undefined;
  }

  function row(u) {
    return h('tr', {},
      h('td', {}, u.name || '—'),
      h('td', {}, u.email),
      h('td', {}, u.role),
      h('td', {}, u.is_active ? 'Active' : h('span', { class: 'badge inactive' }, 'Inactive')),
      h('td', {}, time(u.last_login_at)),
      h('td', {}, time(u.created_at)),
      manage ? h('td', {}, actions(u)) : null);
  }

  function actions(u) {
    const roles = assignableRoles(me);
    if (!roles.includes(u.role)) return h('span', { class: 'muted' }, 'No changes allowed');
    const self = u.id === me.user.id;
    const selectId = nextId('role');
    const role = h('select', { id: selectId, name: 'role' }, roles.map((r) => option(r, r, r === u.role)));
    const form = h('form', { class: 'row-actions', 'aria-label': `Manage ${u.email}` },
      h('label', { for: selectId, class: 'visually-hidden' }, `Role for ${u.email}`),
      role,
      h('button', { type: 'submit', class: 'secondary' }, 'Change role'),
      h('button', { type: 'button', class: u.is_active ? 'danger' : 'secondary', onclick: toggle },
        u.is_active ? 'Deactivate' : 'Reactivate'));

    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (role.value === u.role) {
        say(messages, 'info', `${u.email} already has the role ${u.role}.`);
        return;
      }
      update(form, u.id, { role: role.value }, `${u.email} is now ${role.value}. Their sessions were ended.`);
    });

    function toggle() {
      if (u.is_active) {
        const who = self ? 'your own account' : u.email;
        if (!window.confirm(`Deactivate ${who}? They are signed out at once and cannot sign in.`)) return;
      }
      update(form, u.id, { is_active: !u.is_active },
        u.is_active ? `${u.email} was deactivated.` : `${u.email} was reactivated.`);
    }
    return form;
  }

  async function update(form, id, body, success) {
    const done = busy(form);
    try {
      await api.patch(`/api/users/${encodeURIComponent(id)}`, body);
      await load();
      say(messages, 'success', success)?.focus(); /* the row's controls were replaced */
    } catch (err) {
      done();
      say(messages, 'error', errorText(err));
    }
  }

  function createForm() {
    const email = field('Email', { name: 'email', type: 'email', required: true, autocomplete: 'off' });
    const name = field('Name', { name: 'name', maxlength: '200', autocomplete: 'off' });
    const password = field('Initial password', {
      name: 'password', type: 'password', required: true, minlength: '10', autocomplete: 'new-password',
    }, 'At least 10 characters. Share it with the user through a safe channel.');
    const role = field('Role', {
      tag: 'select', name: 'role', required: true,
      options: assignableRoles(me).map((r) => option(r, r, r === 'agent')),
    });
    const summary = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
    const form = h('form', { class: 'card', 'aria-labelledby': 'users-create-title' },
      h('h2', { id: 'users-create-title' }, 'Add a user'),
      summary,
      h('div', { class: 'grid' }, email.wrap, name.wrap, password.wrap, role.wrap),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add user')));

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearFormError(form);
      const done = busy(form);
      try {
        const { user } = await api.post('/api/users', {
          email: email.input.value.trim(),
          name: name.input.value.trim(),
          password: password.input.value,
          role: role.input.value,
        });
        done();
        form.reset();
        say(messages, 'success', `${user.email} was added as ${user.role}.`);
        await load();
        email.input.focus();
      } catch (err) {
        done();
        if (err.code === 'email_taken') {
          showFormError(form, { ...err, code: 'invalid_input', fields: [{ field: 'email', message: 'is already used by another user' }] });
        } else {
          showFormError(form, err);
        }
      }
    });
    return form;
  }
}
