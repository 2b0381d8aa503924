/*
 * dom.js - small helpers to build the UI from DOM nodes (never innerHTML,
 * so server data is always text), show API errors, and page through lists.
 */

let uid = 0;

/* A unique id for label/for and aria-describedby pairs. */
export function nextId(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/*
 * h('button', {type: 'button', onclick: fn}, 'Save'): an element with
 * attributes, listeners (on*) and children (nodes or text; null is skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/* Replace root's children with these (nested arrays flattened, null and false skipped). */
export function mount(root, ...children) {
  root.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/* A labelled form control: returns {wrap, input}. */
export function field(label, attrs, hint) {
  const id = attrs.id ?? nextId(attrs.name ?? 'field');
  const control = attrs.tag ?? 'input';
  const { tag, options, ...rest } = attrs;
  const hintId = hint ? `${id}-hint` : null;
  const input = h(control, { ...rest, id, 'aria-describedby': hintId }, options ?? []);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
  return { wrap, input };
}

export function option(value, label, selected = false) {
  return h('option', { value, selected }, label);
}

function capitalise(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}

/* A sentence for the user from an ApiError (or any error). */
export function describeError(err) {
  switch (err?.code) {
    case 'network_error':
      return 'The server could not be reached. Check your connection and try again.';
    case 'rate_limited':
      return `Too many requests. Try again in ${err.retryAfter ?? 'a few'} second${err.retryAfter === 1 ? '' : 's'}.`;
    case 'db_unavailable':
    case 'upstream_unavailable':
      return 'The service is temporarily unavailable. Try again in a moment.';
    case 'invalid_input':
      return 'Please correct the fields below.';
    case 'forbidden':
      if (err.reason === 'page_not_enabled') return 'This feature is not enabled for the business.';
      if (err.reason === 'insufficient_role') return `Your role does not allow this (${err.message}).`;
      return capitalise(err.message);
    default:
      return capitalise(err?.message ?? 'Something went wrong.');
  }
}

/* describeError, plus the field messages of invalid_input, for errors shown away from a form. */
export function errorText(err) {
  const fields = (err?.fields ?? []).map((f) => `${f?.field ?? 'request'} ${f?.message ?? 'is invalid'}`);
  if (err?.code === 'invalid_input' && fields.length) return `Invalid input: ${fields.join('; ')}.`;
  return describeError(err);
}

/* Remove the error marks a previous showFormError left on the form. */
export function clearFormError(form) {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') ?? '').split(' ').filter((x) => x && !x.endsWith('-error'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }
  const summary = form.querySelector('.form-error');
  if (summary) {
    summary.replaceChildren();
    summary.hidden = true;
  }
}

/*
 * Show an API error on a form: the summary in its .form-error element, and
 * each invalid_input field next to the control of that name (the others in
 * the summary). Focuses the first invalid control, or the summary.
 */
export function showFormError(form, err) {
  clearFormError(form);
  const summary = form.querySelector('.form-error');
  const loose = [];
  let first = null;
  for (const f of err?.fields ?? []) {
    const name = String(f?.field ?? '');
    const input = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
    const wrap = input?.closest('.field');
    if (!wrap) {
      input?.setAttribute('aria-invalid', 'true');
      loose.push(h('li', {}, `${name || 'request'}: ${f?.message ?? 'is invalid'}`));
      continue;
    }
    const errId = `${input.id || nextId('input')}-error`;
    input.setAttribute('aria-invalid', 'true');
    const described = input.getAttribute('aria-describedby');
    input.setAttribute('aria-describedby', described ? `${described} ${errId}` : errId);
    const label = input.labels?.[0]?.textContent ?? name;
    wrap.append(h('p', { class: 'field-error', id: errId }, `${label} ${f.message ?? 'is invalid'}.`));
    first ??= input;
  }
  if (summary) {
    summary.append(h('span', {}, describeError(err)));
    if (loose.length) summary.append(h('ul', {}, loose));
    summary.hidden = false;
  }
  (first ?? summary)?.focus();
}

/* A notice for a view: role=alert for errors, role=status for news. */
export function notice(kind, text) {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status', tabindex: '-1' }, text);
}

/* Replace the contents of a message slot with a notice (or nothing); returns the notice. */
export function say(slot, kind, text) {
  const el = text ? notice(kind, text) : null;
  slot.replaceChildren(...(el ? [el] : []));
  return el;
}

/* An RFC 3339 time in the user's locale, inside <time>. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return h('time', { datetime: iso, title: iso }, d.toLocaleString());
}

/* A table with a caption and column headers, in a horizontally scrollable region. */
export function table(caption, headers, rows) {
  const id = nextId('caption');
  return h('div', { class: 'table-wrap', role: 'region', 'aria-labelledby': id, tabindex: '0' },
    h('table', {},
      h('caption', { id }, caption),
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
}

/* Previous/next paging for a list envelope {total, page, page_size}. */
export function pager(list, label, onPage) {
  const pages = Math.max(1, Math.ceil(list.total / list.page_size));
  return h('nav', { class: 'pager', 'aria-label': `${label} pages` },
    h('button', { type: 'button', class: 'secondary', disabled: list.page <= 1, onclick: () => onPage(list.page - 1) }, 'Previous'),
    h('span', {}, `Page ${list.page} of ${pages} · ${list.total} ${label.toLowerCase()}`),
    h('button', { type: 'button', class: 'secondary', disabled: list.page >= pages, onclick: () => onPage(list.page + 1) }, 'Next'));
}

/* Disable a form's controls while a request runs; returns the undo. */
export function busy(form) {
  const controls = [...form.querySelectorAll('button, input, select, textarea')].filter((c) => !c.disabled);
  for (const c of controls) c.disabled = true;
  form.setAttribute('aria-busy', 'true');
  return () => {
    for (const c of controls) c.disabled = false;
    form.removeAttribute('aria-busy');
  };
}
