/*
 * settings.js - page settings (owner): the business's WhatsApp Cloud API
 * account (GET/PUT /api/settings/whatsapp). Secrets are write-only: the form
 * shows whether each is set, and an empty secret field keeps the stored one.
 * Users and the audit trail have their own views (users.js, audit.js); the
 * business pages are set by a system_admin in businesses.js.
 *
 * Accessible names (the browser tests rely on them; keep them stable):
 *   heading  "Settings" (h1); form "WhatsApp account"
 *   inputs   "Phone number ID", "WhatsApp Business Account ID", "Access token", "App secret", "Verify token"
 *            (each secret's hint says "Set" or "Not set")
 *   button   "Save WhatsApp settings"; success status "WhatsApp settings saved."
 */
import * as api from '../api.js';
import { VIEW_LABELS, allowedViews } from '../access.js';
import {
  busy, clearFormError, field, h, mount, say, showFormError, time,
} from '../dom.js';

const SECRETS = [
  ['access_token', 'Access token'],
  ['app_secret', 'App secret'],
  ['verify_token', 'Verify token'],
];

export function render(root, { me }) {
  const messages = h('div', { class: 'messages' });
  const formSlot = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const links = allowedViews(me).filter((v) => v === 'users' || v === 'audit');

  mount(root,
    h('h1', { tabindex: '-1' }, 'Settings'),
    h('p', { class: 'lead' }, `Settings of ${me.business.name}.`),
    messages,
    formSlot,
    links.length
      ? h('section', { class: 'card', 'aria-labelledby': 'settings-more' },
        h('h2', { id: 'settings-more' }, 'More settings'),
        h('ul', {}, links.map((v) => h('li', {}, h('a', { href: `#/${v}` }, VIEW_LABELS[v]),
          v === 'users' ? ' — who can sign in, and their roles' : ' — who did what, and when'))))
      : null);

  load();

  async function load() {
    let current = null;
    try {
      current = await api.get('/api/settings/whatsapp');
    } catch (err) {
      if (err.status !== 404) {
        formSlot.removeAttribute('aria-busy');
        say(formSlot, 'error', `The WhatsApp settings could not be loaded: ${err.message}`);
        return;
      }
    }
    formSlot.removeAttribute('aria-busy');
    formSlot.replaceChildren(whatsappForm(current));
  }

  function whatsappForm(cur) {
    const first = cur === null;
    const phone = field('Phone number ID', {
      name: 'phone_number_id', inputmode: 'numeric', pattern: '[0-9]{1,32}', required: first, autocomplete: 'off', value: cur?.phone_number_id ?? '',
    }, 'The id of the WhatsApp number in Meta\'s WhatsApp Manager (digits).');
    const waba = field('WhatsApp Business Account ID', {
      name: 'waba_id', inputmode: 'numeric', pattern: '[0-9]{1,32}', required: first, autocomplete: 'off', value: cur?.waba_id ?? '',
    });
    const secrets = SECRETS.map(([name, label]) => {
      const set = Boolean(cur?.[`${name}_set`]);
      return [name, field(label, {
        name, type: 'password', autocomplete: 'new-password', minlength: '8', required: first,
      }, `${set ? 'Set' : 'Not set'}. ${first ? 'Required.' : 'Leave empty to keep the stored value.'}`), set];
    });
    const summary = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
    const form = h('form', { class: 'card', 'aria-labelledby': 'settings-wa-title' },
      h('h2', { id: 'settings-wa-title' }, 'WhatsApp account'),
      h('p', { class: 'hint' }, first
        ? 'Not configured yet: every field is required.'
        : ['Last changed ', time(cur.updated_at), '. Secrets are never shown again after saving.']),
      summary,
      h('div', { class: 'grid' }, phone.wrap, waba.wrap, secrets.map(([, f]) => f.wrap)),
      h('ul', { class: 'secret-state' }, secrets.map(([name, , set]) => h('li', {},
        `${SECRETS.find(([n]) => n === name)[1]}: `, h('span', { class: set ? 'badge set' : 'badge inactive' }, set ? 'set' : 'not set')))),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save WhatsApp settings')));

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearFormError(form);
      const body = {};
      const pv = phone.input.value.trim();
      const wv = waba.input.value.trim();
      if (first || pv !== (cur.phone_number_id ?? '')) body.phone_number_id = pv;
      if (first || wv !== (cur.waba_id ?? '')) body.waba_id = wv;
      for (const [name, f] of secrets) if (f.input.value !== '') body[name] = f.input.value;
      if (Object.keys(body).length === 0) {
        say(messages, 'info', 'Nothing changed.')?.focus();
        return;
      }
      const done = busy(form);
      try {
        const saved = await api.put('/api/settings/whatsapp', body);
        formSlot.replaceChildren(whatsappForm(saved));
        say(messages, 'success', 'WhatsApp settings saved.')?.focus();
      } catch (err) {
        done();
        if (err.code === 'phone_number_id_taken') {
          showFormError(form, { ...err, code: 'invalid_input', fields: [{ field: 'phone_number_id', message: 'is used by another business' }] });
        } else if (err.code === 'conflict') {
          showFormError(form, { ...err, code: 'invalid_input', fields: [{ field: 'verify_token', message: 'is used by another business; choose another' }] });
        } else {
          showFormError(form, err);
        }
      }
    });
    return form;
  }
}
