/*
 * businesses.js - platform administration (system_admin only): the list of
 * businesses (GET /api/admin/businesses), a create form (POST), the pages
 * each has enabled (PATCH .../pages), and "act as", which sends
 * X-Business-Id with every later request.
 */
import * as api from '../api.js';
import { PAGES } from '../access.js';
import {
  busy, clearFormError, errorText, field, h, mount, nextId, option, pager, say, showFormError, table, time,
} from '../dom.js';

const PAGE_SIZES = [25, 50, 100, 200];

export function render(root, { me, actAs, refreshMe }) {
  const state = { page: 1, pageSize: 50 };
  const messages = h('div', { class: 'messages' });
  const list = h('div', { class: 'list' });
  const sizeId = nextId('biz-size');
  const size = h('select', { id: sizeId },
    PAGE_SIZES.map((n) => option(String(n), String(n), n === state.pageSize)));
  size.addEventListener('change', () => {
    state.pageSize = Number(size.value);
    state.page = 1;
    load();
  });

  mount(root,
    h('h1', { tabindex: '-1' }, 'Businesses'),
    h('p', { class: 'lead' }, 'Every tenant on this installation. "Act as" works inside one business; every request is audited.'),
    messages,
    createForm(),
    h('section', { 'aria-labelledby': 'biz-list-title' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'biz-list-title' }, 'All businesses'),
        h('div', { class: 'inline-field' }, h('label', { for: sizeId }, 'Per page'), size)),
      list),
  );
  load();

  async function load() {
    list.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get('/api/admin/businesses', { page: state.page, page_size: state.pageSize });
      list.replaceChildren(
        data.items.length
          ? table('Businesses',
            ['ID', 'Name', 'Time zone', 'Country', 'Max calls', 'Status', 'Created', 'Enabled pages', 'Act as'],
            data.items.map(row))
          : h('p', {}, 'No businesses yet. Create the first one above.'),
        pager(data, 'Businesses', (p) => {
          state.page = p;
          load();
        }),
      );
    } catch (err) {
      say(list, 'error', errorText(err));
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  function row(b) {
    const acting = me.business?.id === b.id;
    return h('tr', {},
      h('td', {}, String(b.id)),
      h('th', { scope: 'row' }, b.name),
      h('td', {}, b.timezone),
      h('td', {}, b.default_country),
      h('td', {}, String(b.max_concurrent_calls)),
      h('td', {}, b.is_active ? 'Active' : h('span', { class: 'badge inactive' }, 'Inactive')),
      h('td', {}, time(b.created_at)),
      h('td', {}, pagesForm(b)),
      h('td', {}, acting
        ? h('span', { class: 'badge acting' }, 'Acting')
        : h('button', { type: 'button', class: 'secondary', onclick: () => actAs(b.id), 'aria-label': `Act as ${b.name}` }, 'Act as')));
  }

  function pagesForm(b) {
    const enabled = new Set(b.enabled_pages);
    const boxes = Object.entries(PAGES).map(([key, page]) => {
      const id = nextId(`page-${key}`);
      return h('div', { class: 'check' },
        h('input', { type: 'checkbox', id, name: 'enabled_pages', value: key, checked: enabled.has(key) }),
        h('label', { for: id }, page.label, ' ', h('code', {}, key)));
    });
    const form = h('form', { class: 'pages-form' },
      h('fieldset', {}, h('legend', { class: 'visually-hidden' }, `Pages of ${b.name}`), boxes),
      h('button', { type: 'submit', class: 'secondary' }, 'Save pages'));

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const keys = [...form.querySelectorAll('input[name="enabled_pages"]:checked')].map((c) => c.value);
      const done = busy(form);
      try {
        const { business } = await api.patch(`/api/admin/businesses/${encodeURIComponent(b.id)}/pages`, { enabled_pages: keys });
        const labels = business.enabled_pages.map((k) => PAGES[k]?.label ?? k);
        say(messages, 'success', `Pages of ${business.name}: ${labels.length ? labels.join(', ') : 'none'}.`);
        if (me.business?.id === b.id) await refreshMe();
      } catch (err) {
        say(messages, 'error', errorText(err))?.focus();
      } finally {
        done();
      }
    });
    return form;
  }

  function createForm() {
    const name = field('Name', { name: 'name', required: true, maxlength: '200', autocomplete: 'off' });
    const tz = field('Time zone', { name: 'timezone', value: 'UTC', maxlength: '64', autocomplete: 'off' },
      'An IANA name, e.g. Europe/Berlin or America/New_York.');
    const country = field('Default country', {
      name: 'default_country', value: 'US', maxlength: '2', pattern: '[A-Z]{2}', autocomplete: 'off',
    }, 'Two capital letters (ISO 3166), used to normalise phone numbers.');
    const calls = field('Max concurrent calls', {
      name: 'max_concurrent_calls', type: 'number', min: '1', max: '1000', step: '1', value: '3',
    });
    const summary = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
    const form = h('form', { class: 'card', 'aria-labelledby': 'biz-create-title' },
      h('h2', { id: 'biz-create-title' }, 'Create a business'),
      summary,
      h('div', { class: 'grid' }, name.wrap, tz.wrap, country.wrap, calls.wrap),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create business')));

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearFormError(form);
      const body = { name: name.input.value.trim() };
      if (tz.input.value.trim()) body.timezone = tz.input.value.trim();
      if (country.input.value.trim()) body.default_country = country.input.value.trim().toUpperCase();
      if (calls.input.value !== '') body.max_concurrent_calls = Number(calls.input.value);
      const done = busy(form);
      try {
        const { business } = await api.post('/api/admin/businesses', body);
        done();
        form.reset();
        say(messages, 'success', `${business.name} was created (#${business.id}). Enable its pages below, then add its owner with "Act as".`);
        await load();
        name.input.focus();
      } catch (err) {
        done();
        showFormError(form, err);
      }
    });
    return form;
  }
}
