/*
 * audit.js - the audit trail, newest first: a system_admin reads every
 * tenant's (GET /api/admin/audit, optionally narrowed by business), an owner
 * their own business's (GET /api/audit, page settings). Filters by tag,
 * action, actor and time.
 */
import * as api from '../api.js';
import { auditScope } from '../access.js';
import {
  busy, clearFormError, errorText, field, h, mount, nextId, pager, say, showFormError, table, time,
} from '../dom.js';

const TAGS = ['AUDIT', 'SECURITY', 'FORCE_CANCEL', 'STALE_DETECTION'];
const ACTIONS = ['impersonate', 'business.create', 'business.pages', 'user.create', 'user.update', 'tenant.cross_access'];

function datalist(id, values) {
  return h('datalist', { id }, values.map((v) => h('option', { value: v })));
}

/* A datetime-local value (the user's local time) as RFC 3339 UTC, or ''. */
function toRfc3339(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString();
}

export function render(root, { me }) {
  const all = auditScope(me) === 'all';
  const path = all ? '/api/admin/audit' : '/api/audit';
  const state = { page: 1, pageSize: 50, query: {} };
  const list = h('div', { class: 'list' });
  const filters = filterForm();

  mount(root,
    h('h1', { tabindex: '-1' }, 'Audit trail'),
    h('p', { class: 'lead' }, all
      ? 'Security-relevant events of every business, newest first.'
      : `Security-relevant events of ${me.business.name}, newest first.`),
    filters.form,
    h('section', { 'aria-labelledby': 'audit-list-title' },
      h('h2', { id: 'audit-list-title' }, 'Events'),
      list),
  );
  state.query = filters.read();
  load();

  /* Load the current page; resolves null, or the ApiError after showing it. */
  async function load() {
    list.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get(path, { ...state.query, page: state.page, page_size: state.pageSize });
      list.replaceChildren(
        data.items.length
          ? table('Audit events',
            ['Time', 'Tag', 'Action', 'Outcome', 'Actor', 'Resource', ...(all ? ['Business'] : []), 'IP', 'Request', 'Details'],
            data.items.map(row))
          : h('p', {}, 'No events match these filters.'),
        pager(data, 'Events', (p) => {
          state.page = p;
          load();
        }),
      );
      return null;
    } catch (err) {
      /* a bad filter is shown on the filter form, by the caller that has it enabled */
      if (err.code === 'invalid_input') list.replaceChildren();
      else say(list, 'error', errorText(err));
      return err;
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  function row(e) {
    const actor = e.actor_id == null
      ? h('span', { class: 'muted' }, 'anonymous')
      : [`#${e.actor_id}`, e.actor_role ? ` (${e.actor_role})` : '',
        e.impersonator_id != null ? h('span', { class: 'badge acting' }, 'impersonating') : null];
    const resource = e.resource_type ? `${e.resource_type}${e.resource_id != null ? ` #${e.resource_id}` : ''}` : '—';
    const hasDetails = e.details && Object.keys(e.details).length > 0;
    return h('tr', {},
      h('td', {}, time(e.ts)),
      h('td', {}, h('span', { class: `tag tag-${String(e.tag).toLowerCase()}` }, e.tag)),
      h('td', {}, h('code', {}, e.action)),
      h('td', {}, e.outcome === 'ok' ? 'ok' : h('span', { class: 'badge inactive' }, e.outcome)),
      h('td', {}, actor),
      h('td', {}, resource),
      all ? h('td', {}, e.business_id != null ? `#${e.business_id}` : '—') : null,
      h('td', {}, e.ip ?? '—'),
      h('td', {}, e.request_id ? h('code', { class: 'small' }, e.request_id) : '—'),
      h('td', {}, hasDetails
        ? h('details', {}, h('summary', {}, 'Show'), h('pre', {}, JSON.stringify(e.details, null, 2)))
        : '—'));
  }

  function filterForm() {
    const tagList = nextId('audit-tags');
    const actionList = nextId('audit-actions');
    const tag = field('Tag', { name: 'tag', list: tagList, maxlength: '32', autocomplete: 'off' });
    const action = field('Action', { name: 'action', list: actionList, maxlength: '100', autocomplete: 'off' });
    const actor = field('Actor (user id)', { name: 'actor_id', type: 'number', min: '1', step: '1' });
    const business = all
      ? field('Business id', { name: 'business_id', type: 'number', min: '1', step: '1', value: me.business?.id ?? '' })
      : null;
    const from = field('From', { name: 'from', type: 'datetime-local' }, 'Your local time.');
    const to = field('Until', { name: 'to', type: 'datetime-local' });
    const summary = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
    const form = h('form', { class: 'card filters', role: 'search', 'aria-label': 'Filter events' },
      summary,
      h('div', { class: 'grid' }, tag.wrap, action.wrap, actor.wrap, business?.wrap, from.wrap, to.wrap),
      datalist(tagList, TAGS), datalist(actionList, ACTIONS),
      h('div', { class: 'actions' },
        h('button', { type: 'submit' }, 'Apply filters'),
        h('button', { type: 'reset', class: 'secondary' }, 'Clear')));

    function read() {
      return {
        tag: tag.input.value.trim(),
        action: action.input.value.trim(),
        actor_id: actor.input.value,
        business_id: business?.input.value ?? '',
        from: toRfc3339(from.input.value),
        to: toRfc3339(to.input.value),
      };
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearFormError(form);
      state.query = read();
      state.page = 1;
      const done = busy(form);
      const err = await load();
      done();
      if (err?.code === 'invalid_input') showFormError(form, err);
    });
    form.addEventListener('reset', () => {
      /* after the browser has cleared the controls */
      setTimeout(() => {
        if (business) business.input.value = '';
        clearFormError(form);
        state.query = read();
        state.page = 1;
        load().then((err) => err?.code === 'invalid_input' && showFormError(form, err));
      }, 0);
    });
    return { form, read };
  }
}
