/*
 * outbound.js - page calls_outbound: import leads from a CSV file (with a
 * preview and per-row errors), the leads and lead lists, start a run from a
 * list or from selected leads, the active run with live progress, cancel and
 * force-cancel (each confirmed in a <dialog>), the runs history with a run's
 * jobs, and the call log.
 *
 * Accessible names (the browser tests rely on them; keep them stable):
 *   heading         "Outbound calls" (h1)
 *   file input      label "CSV file";  text input label "List name";  button "Import"
 *   preview table   caption "Preview of <file name>"
 *   import result   role=status text "Imported N new leads, M duplicates skipped, K rows with errors."
 *                   table caption "Rows with errors" (columns Row, Line, Field, Message)
 *   start form      radio "Lead list" / radio "Selected leads"; select label "List";
 *                   select label "Call script"; number input label "Concurrency" (1..10); button "Start run"
 *   leads table     caption "Leads"; row checkboxes "Select lead <name or phone>"; "Select all leads on this page"
 *   active run      region "Active run"; role=status labelled "Run status" whose text is the run's
 *                   status (pending, running, completed, cancelled, stopped, failed);
 *                   <progress> labelled "Run progress"; text "<completed> / <total> completed";
 *                   "Worker" / "Last heartbeat" facts; a "Stale" badge and alert while run.stale
 *   buttons         "Cancel run", "Force-cancel"; the confirmation <dialog> has buttons "Confirm" and "Keep running"
 *   runs history    table caption "Runs"; per row button "Jobs of run #<id>"
 *   jobs            table caption "Jobs of run #<id>"
 *   call log        table caption "Call log"; button "Refresh call log"
 * Polls GET /api/outbound_calls/jobs/active every 2 s while a run is active and the tab is visible.
 */
import * as api from '../api.js';
import { atLeast } from '../access.js';
import {
  errorText, h, mount, nextId, option, pager, say, table, time,
} from '../dom.js';

const POLL_MS = 2000;
const PREVIEW_ROWS = 20;
const TERMINAL = new Set(['completed', 'cancelled', 'stopped', 'failed']);
const SVG_NS = 'http://www.w3.org/2000/svg';
const SEGMENTS = [
  ['completed', 'Completed'],
  ['failed', 'Failed'],
  ['cancelled', 'Cancelled'],
  ['in_progress', 'In progress'],
  ['queued', 'Queued'],
];

/* RFC 4180-ish CSV parsing for the preview (the server parses the real import). */
export function parseCsv(text, limit = Infinity) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell);
      cell = '';
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
      if (rows.length >= limit) return rows;
    } else cell += c;
  }
  row.push(cell);
  if (row.length > 1 || row[0] !== '') rows.push(row);
  return rows;
}

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function statusBadge(status) {
  return h('span', { class: `badge run-${status}` }, status);
}

export function render(root, { me }) {
  const canImport = atLeast(me.user.role, 'admin');
  const state = {
    selected: new Map(), /* lead id -> label */
    leadsPage: 1,
    leadsList: '',
    runsPage: 1,
    callsPage: 1,
    run: null, /* the run shown in the active-run card */
    pollTimer: 0,
    polling: false,
    jobsRun: null,
    jobsPage: 1,
  };
  const messages = h('div', { class: 'messages' });
  const listSelects = [];

  /* ---------------------------------------------------------------- active run */
  const runStatus = h('span', { role: 'status', 'aria-label': 'Run status', class: 'run-status' }, '—');
  const progress = h('progress', { 'aria-label': 'Run progress', max: '1', value: '0' });
  const progressText = h('p', { class: 'progress-text' });
  const bar = svg('svg', { class: 'run-bar', viewBox: '0 0 1000 16', preserveAspectRatio: 'none', 'aria-hidden': 'true', focusable: 'false' });
  const legend = h('ul', { class: 'run-legend' });
  const worker = h('dd', {}, '—');
  const heartbeat = h('dd', {}, '—');
  const staleSlot = h('div', {});
  const runTitle = h('h2', { id: 'ob-active-title' }, 'Active run');
  const cancelBtn = h('button', { type: 'button', class: 'secondary', onclick: () => confirmCancel(false) }, 'Cancel run');
  const forceBtn = h('button', { type: 'button', class: 'danger', onclick: () => confirmCancel(true) }, 'Force-cancel');
  const runBody = h('div', { class: 'run-body', hidden: true },
    h('p', {}, 'Status: ', runStatus),
    progress, bar, progressText, legend,
    staleSlot,
    h('dl', { class: 'facts' }, h('dt', {}, 'Worker'), worker, h('dt', {}, 'Last heartbeat'), heartbeat),
    h('div', { class: 'actions' }, cancelBtn, forceBtn));
  const runEmpty = h('p', { class: 'muted' }, 'No run is active.');
  const runMessages = h('div', {});
  const pollMessages = h('div', {}); /* the last poll's failure, cleared by the next success */
  const activeCard = h('section', { class: 'card', role: 'region', 'aria-labelledby': 'ob-active-title' },
    runTitle, runMessages, pollMessages, runEmpty, runBody);

  /* the confirmation dialog */
  const dlgTitle = h('h2', { id: nextId('dlg-title') });
  const dlgText = h('p', { id: nextId('dlg-text') });
  const dlgConfirm = h('button', { type: 'button', class: 'danger' }, 'Confirm');
  const dlgKeep = h('button', { type: 'button', class: 'secondary' }, 'Keep running');
  const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': dlgTitle.id, 'aria-describedby': dlgText.id },
    dlgTitle, dlgText, h('div', { class: 'actions' }, dlgConfirm, dlgKeep));
  dlgKeep.addEventListener('click', () => dialog.close('keep'));

  /* ---------------------------------------------------------------- sections */
  const importSlot = h('div', {});
  const leadsSlot = h('div', { class: 'list' });
  const runsSlot = h('div', { class: 'list' });
  const jobsSlot = h('div', { class: 'list' });
  const callsSlot = h('div', { class: 'list' });

  const startForm = startRunForm();

  mount(root,
    h('h1', { tabindex: '-1' }, 'Outbound calls'),
    h('p', { class: 'lead' }, `Import leads, call them in runs and follow each call for ${me.business.name}.`),
    messages,
    activeCard,
    canImport ? importForm() : null,
    startForm.form,
    h('section', { 'aria-labelledby': 'ob-leads-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'ob-leads-title' }, 'Leads'), leadsFilter()),
      leadsSlot),
    h('section', { 'aria-labelledby': 'ob-runs-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'ob-runs-title' }, 'Runs history'),
        h('button', { type: 'button', class: 'secondary', onclick: () => loadRuns() }, 'Refresh runs')),
      runsSlot, jobsSlot),
    h('section', { 'aria-labelledby': 'ob-calls-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'ob-calls-title' }, 'Call log'),
        h('button', { type: 'button', class: 'secondary', onclick: () => loadCalls() }, 'Refresh call log')),
      callsSlot),
    dialog,
  );

  const onVisibility = () => {
    if (!root.isConnected) {
      document.removeEventListener('visibilitychange', onVisibility);
      return;
    }
    if (document.visibilityState === 'visible' && state.polling) schedule(0);
  };
  document.addEventListener('visibilitychange', onVisibility);

  loadLists();
  loadLeads();
  loadRuns();
  loadCalls();
  startPolling();

  /* ---------------------------------------------------------------- import */
  function importForm() {
    const fileId = nextId('csv');
    const nameId = nextId('list-name');
    const file = h('input', { id: fileId, name: 'file', type: 'file', accept: '.csv,text/csv', required: true });
    const listName = h('input', { id: nameId, name: 'list_name', maxlength: '200', autocomplete: 'off' });
    const preview = h('div', {});
    const result = h('div', {});
    const submit = h('button', { type: 'submit' }, 'Import');
    const form = h('form', { class: 'card', 'aria-labelledby': 'ob-import-title' },
      h('h2', { id: 'ob-import-title' }, 'Import leads'),
      h('p', { class: 'hint' }, 'A CSV file with a header row naming phone (required), name, email and notes. At most 5000 rows.'),
      h('div', { class: 'grid' },
        h('div', { class: 'field' }, h('label', { for: fileId }, 'CSV file'), file),
        h('div', { class: 'field' }, h('label', { for: nameId }, 'List name'), listName,
          h('p', { class: 'hint' }, 'Optional; the default names the import time.'))),
      preview,
      h('div', { class: 'actions' }, submit),
      result);

    file.addEventListener('change', async () => {
      result.replaceChildren();
      const f = file.files?.[0];
      if (!f) {
        preview.replaceChildren();
        return;
      }
      if (!listName.value) listName.value = f.name.replace(/\.csv$/i, '');
      try {
        const text = await f.text();
        const rows = parseCsv(text, PREVIEW_ROWS + 1);
        if (rows.length === 0) {
          say(preview, 'error', 'The file is empty.');
          return;
        }
        const [head, ...body] = rows;
        mount(preview,
          table(`Preview of ${f.name} (first ${Math.min(body.length, PREVIEW_ROWS)} rows)`, ['Row', ...head],
            body.map((r, i) => h('tr', {}, h('td', {}, String(i + 1)), head.map((_, j) => h('td', {}, r[j] ?? ''))))),
          head.some((c) => /^(phone|phone_number|mobile|number)$/i.test(c.trim()))
            ? null
            : h('p', { class: 'field-error' }, 'The header row has no phone column (phone, phone_number, mobile or number).'));
      } catch {
        say(preview, 'error', 'The file could not be read.');
      }
    });

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = file.files?.[0];
      if (!f) {
        say(result, 'error', 'Choose a CSV file first.');
        file.focus();
        return;
      }
      submit.disabled = true;
      form.setAttribute('aria-busy', 'true');
      try {
        const data = await api.postRaw('/api/leads/import', await f.text(), 'text/csv; charset=utf-8',
          { list_name: listName.value.trim() });
        showImportResult(result, data);
        await loadLists(data.list_id);
        state.leadsList = '';
        loadLeads();
      } catch (err) {
        mount(result, notice2('error', errorText(err)), importErrors(err.errors));
        result.querySelector('.notice')?.focus();
      } finally {
        submit.disabled = false;
        form.removeAttribute('aria-busy');
      }
    });
    return form;
  }

  function showImportResult(slot, data) {
    const errs = data.errors ?? [];
    const text = `Imported ${data.imported} new lead${data.imported === 1 ? '' : 's'}, `
      + `${data.skipped} duplicate${data.skipped === 1 ? '' : 's'} skipped, `
      + `${errs.length} row${errs.length === 1 ? '' : 's'} with errors.`;
    const n = notice2(errs.length ? 'info' : 'success', text);
    mount(slot, n,
      h('p', {}, `The valid rows are in the list “${data.list_name ?? `#${data.list_id}`}”, chosen below to start a run.`),
      errs.length ? importErrors(errs) : null);
    n.focus();
  }

  function importErrors(errs) {
    if (!errs || errs.length === 0) return null;
    return table('Rows with errors', ['Row', 'Line', 'Field', 'Message'], errs.map((e) => {
      const reason = String(e.reason ?? e.message ?? '');
      const m = /^(phone|name|email|notes|row)\b/i.exec(reason);
      return h('tr', {}, h('td', {}, e.row == null ? '—' : String(e.row)), h('td', {}, e.line == null ? '—' : String(e.line)),
        h('td', {}, m ? m[1].toLowerCase() : '—'), h('td', {}, reason));
    }));
  }

  /* ---------------------------------------------------------------- lists and leads */
  async function loadLists(selectId) {
    try {
      const data = await api.get('/api/lead_lists', { page: 1, page_size: 200 });
      for (const sel of listSelects) {
        const keep = selectId != null && sel.dataset.role === 'run' ? String(selectId) : sel.value;
        mount(sel,
          sel.dataset.role === 'filter' ? option('', 'All leads') : null,
          data.items.map((l) => option(String(l.id), `${l.name} (${l.lead_count} lead${l.lead_count === 1 ? '' : 's'})`)));
        if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
        if (sel.dataset.role === 'run') {
          sel.disabled = data.items.length === 0;
          if (data.items.length === 0) sel.append(option('', 'No lead lists yet'));
        }
      }
      if (selectId != null) startForm.useList();
    } catch (err) {
      say(messages, 'error', errorText(err));
    }
  }

  function leadsFilter() {
    const id = nextId('lead-filter');
    const sel = h('select', { id, 'data-role': 'filter' }, option('', 'All leads'));
    listSelects.push(sel);
    sel.addEventListener('change', () => {
      state.leadsList = sel.value;
      state.leadsPage = 1;
      loadLeads();
    });
    return h('div', { class: 'inline-field' }, h('label', { for: id }, 'Show'), sel);
  }

  async function loadLeads() {
    leadsSlot.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get('/api/leads', { page: state.leadsPage, page_size: 50, list_id: state.leadsList });
      const all = h('input', { type: 'checkbox', 'aria-label': 'Select all leads on this page' });
      const boxes = [];
      const rows = data.items.map((l) => {
        const label = l.name || l.phone;
        const box = h('input', { type: 'checkbox', 'aria-label': `Select lead ${label}`, checked: state.selected.has(l.id), disabled: l.do_not_call });
        box.addEventListener('change', () => {
          if (box.checked) state.selected.set(l.id, label);
          else state.selected.delete(l.id);
          startForm.updateSelected();
        });
        if (!l.do_not_call) boxes.push(box);
        return h('tr', {},
          h('td', {}, box),
          h('td', {}, l.name || '—'),
          h('td', {}, l.phone),
          h('td', {}, l.email || '—'),
          h('td', {}, l.status),
          h('td', {}, l.do_not_call ? h('span', { class: 'badge inactive' }, 'Do not call') : 'No'),
          h('td', {}, time(l.last_call_at)),
          h('td', {}, time(l.created_at)));
      });
      all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
      all.addEventListener('change', () => {
        for (const b of boxes) {
          if (b.checked !== all.checked) {
            b.checked = all.checked;
            b.dispatchEvent(new Event('change'));
          }
        }
      });
      leadsSlot.replaceChildren(
        data.items.length
          ? table('Leads', [all, 'Name', 'Phone', 'Email', 'Status', 'Do not call', 'Last call', 'Created'], rows)
          : h('p', {}, canImport ? 'No leads yet. Import a CSV file above.' : 'No leads yet.'),
        pager(data, 'Leads', (p) => {
          state.leadsPage = p;
          loadLeads();
        }));
    } catch (err) {
      say(leadsSlot, 'error', errorText(err));
    } finally {
      leadsSlot.removeAttribute('aria-busy');
    }
  }

  /* ---------------------------------------------------------------- start a run */
  function startRunForm() {
    const name = nextId('source');
    const listRadio = h('input', { type: 'radio', name, value: 'list', id: nextId('src-list'), checked: true });
    const leadsRadio = h('input', { type: 'radio', name, value: 'leads', id: nextId('src-leads') });
    const listId = nextId('run-list');
    const list = h('select', { id: listId, name: 'list_id', 'data-role': 'run' }, option('', 'Loading…'));
    listSelects.push(list);
    const scriptId = nextId('run-script');
    const script = h('select', { id: scriptId, name: 'script_id' }, option('', 'Default (none)'));
    const concId = nextId('concurrency');
    const conc = h('input', { id: concId, name: 'concurrency', type: 'number', min: '1', max: '10', step: '1', value: '3', required: true, 'aria-describedby': `${concId}-hint` });
    const selectedText = h('span', {}, 'Selected leads (0)');
    const clearBtn = h('button', { type: 'button', class: 'secondary', onclick: () => { state.selected.clear(); updateSelected(); loadLeads(); } }, 'Clear selection');
    const slot = h('div', {});
    const submit = h('button', { type: 'submit' }, 'Start run');
    const form = h('form', { class: 'card', 'aria-labelledby': 'ob-start-title' },
      h('h2', { id: 'ob-start-title' }, 'Start a run'),
      slot,
      h('fieldset', { class: 'plain' },
        h('legend', {}, 'Call'),
        h('div', { class: 'check' }, listRadio, h('label', { for: listRadio.id }, 'Lead list')),
        h('div', { class: 'check' }, leadsRadio, h('label', { for: leadsRadio.id }, selectedText), clearBtn)),
      h('div', { class: 'grid' },
        h('div', { class: 'field' }, h('label', { for: listId }, 'List'), list),
        h('div', { class: 'field' }, h('label', { for: scriptId }, 'Call script'), script),
        h('div', { class: 'field' }, h('label', { for: concId }, 'Concurrency'), conc,
          h('p', { class: 'hint', id: `${concId}-hint` }, 'Calls at the same time, 1 to 10.'))),
      h('div', { class: 'actions' }, submit));

    api.get('/api/outbound_calls/scripts', { page: 1, page_size: 200 }).then((data) => {
      script.append(...data.items.map((s) => option(String(s.id), `${s.name} (${s.kind})`)));
    }).catch(() => { /* scripts are optional */ });

    list.addEventListener('change', () => { listRadio.checked = true; });

    function updateSelected() {
      const n = state.selected.size;
      selectedText.textContent = `Selected leads (${n})`;
      leadsRadio.disabled = n === 0;
      clearBtn.disabled = n === 0;
      if (n > 0 && !list.value) leadsRadio.checked = true;
      if (n === 0) listRadio.checked = true;
    }
    updateSelected();

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      slot.replaceChildren();
      const c = Number(conc.value);
      if (!Number.isInteger(c) || c < 1 || c > 10) {
        say(slot, 'error', 'Concurrency must be a whole number from 1 to 10.');
        conc.setAttribute('aria-invalid', 'true');
        conc.focus();
        return;
      }
      conc.removeAttribute('aria-invalid');
      const body = { concurrency: c };
      if (leadsRadio.checked) {
        if (state.selected.size === 0) {
          say(slot, 'error', 'Select at least one lead in the table below.')?.focus();
          return;
        }
        body.lead_ids = [...state.selected.keys()];
      } else {
        if (!list.value) {
          say(slot, 'error', 'Choose a lead list (import one first).')?.focus();
          return;
        }
        body.list_id = Number(list.value);
      }
      if (script.value) body.script_id = Number(script.value);
      submit.disabled = true;
      form.setAttribute('aria-busy', 'true');
      try {
        const data = await api.post('/api/outbound_calls/runs', body);
        const extra = data.skipped_dnc ? ` ${data.skipped_dnc} do-not-call lead${data.skipped_dnc === 1 ? ' was' : 's were'} left out.` : '';
        say(messages, 'success', `Run #${data.run.id} started with ${data.jobs_created} call${data.jobs_created === 1 ? '' : 's'}.${extra}`);
        if (body.lead_ids) {
          state.selected.clear();
          updateSelected();
          loadLeads();
        }
        showRun(data.run);
        startPolling();
        loadRuns();
        runTitle.setAttribute('tabindex', '-1');
        runTitle.focus();
      } catch (err) {
        if (err.code === 'active_run_exists') {
          say(slot, 'error', 'A run is already active. Cancel it or wait for it to finish before starting another.')?.focus();
          startPolling();
        } else {
          say(slot, 'error', errorText(err))?.focus();
        }
      } finally {
        submit.disabled = false;
        form.removeAttribute('aria-busy');
      }
    });
    return {
      form,
      updateSelected,
      useList() {
        if (list.value) listRadio.checked = true;
      },
    };
  }

  /* ---------------------------------------------------------------- the active run */
  function showRun(run) {
    state.run = run;
    runEmpty.hidden = true;
    runBody.hidden = false;
    runTitle.textContent = TERMINAL.has(run.status) ? `Last run #${run.id}` : `Active run #${run.id}`;
    runStatus.textContent = run.status;
    runStatus.className = `run-status badge run-${run.status}`;
    const total = Math.max(0, run.total);
    const done = run.completed + run.failed + run.cancelled;
    progress.max = Math.max(1, total);
    progress.value = Math.min(done, Math.max(1, total));
    progress.setAttribute('aria-valuetext', `${run.completed} of ${total} completed, ${run.failed} failed, ${run.cancelled} cancelled`);
    progressText.textContent = `${run.completed} / ${total} completed · ${run.progress_pct}% done`;

    bar.replaceChildren();
    let x = 0;
    for (const [key] of SEGMENTS) {
      const w = total > 0 ? (run[key] / total) * 1000 : 0;
      if (w > 0) bar.append(svg('rect', { x: x.toFixed(2), y: 0, width: w.toFixed(2), height: 16, class: `seg seg-${key}` }));
      x += w;
    }
    legend.replaceChildren(...SEGMENTS.map(([key, label]) => h('li', {},
      h('span', { class: `swatch seg-${key}`, 'aria-hidden': 'true' }), `${label}: ${run[key]}`)));

    worker.textContent = run.locked_by_worker ?? 'none yet';
    heartbeat.replaceChildren(time(run.last_heartbeat_at));
    if (run.stale && !TERMINAL.has(run.status)) {
      staleSlot.replaceChildren(h('p', { class: 'notice error stale', role: 'alert' },
        h('span', { class: 'badge stale-badge' }, 'Stale'),
        ' No heartbeat from the worker for over 30 seconds. Another worker takes the run over; if none is alive, the run is stopped.'));
    } else staleSlot.replaceChildren();
    if (run.cancel_requested && !TERMINAL.has(run.status)) {
      staleSlot.append(h('p', { class: 'notice info' }, 'Cancel requested: no new calls are made; live calls finish.'));
    }
    const finished = TERMINAL.has(run.status);
    cancelBtn.hidden = finished || run.cancel_requested;
    forceBtn.hidden = finished;
  }

  function startPolling() {
    state.polling = true;
    schedule(0);
  }

  function schedule(ms) {
    clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(poll, ms);
  }

  async function poll() {
    if (!root.isConnected) {
      state.polling = false;
      return;
    }
    if (!state.polling || document.visibilityState === 'hidden') return; /* visibilitychange resumes */
    try {
      const data = await api.get('/api/outbound_calls/jobs/active');
      pollMessages.replaceChildren();
      if (data.active) {
        const changed = state.run?.id !== data.run.id || state.run?.status !== data.run.status;
        showRun(data.run);
        if (changed) loadRuns();
        if (state.jobsRun === data.run.id) loadJobs(false);
      } else {
        state.polling = false;
        const last = data.stopped_run_id ?? state.run?.id;
        if (data.stopped_run_id) {
          say(runMessages, 'error', `Run #${data.stopped_run_id} was stopped: its worker stopped responding.`);
        }
        if (last != null && state.run && !TERMINAL.has(state.run.status)) {
          const { run } = await api.get(`/api/outbound_calls/runs/${encodeURIComponent(last)}`);
          showRun(run);
          loadRuns();
          loadCalls();
          if (state.jobsRun === run.id) loadJobs(false);
        } else if (!state.run) {
          runEmpty.hidden = false;
          runBody.hidden = true;
        }
        return;
      }
    } catch (err) {
      say(pollMessages, 'error', `Could not refresh the run: ${errorText(err)}`);
    }
    if (state.polling && root.isConnected) schedule(POLL_MS);
  }

  function confirmCancel(force) {
    const run = state.run;
    if (!run) return;
    const opener = force ? forceBtn : cancelBtn;
    dlgTitle.textContent = force ? `Force-cancel run #${run.id}?` : `Cancel run #${run.id}?`;
    dlgText.textContent = force
      ? 'The run ends now: queued calls are cancelled and live calls are hung up.'
      : 'No new calls are made. Calls already in progress finish, then the run ends.';
    dlgConfirm.textContent = 'Confirm';
    dialog.returnValue = '';
    const onClose = async () => {
      dialog.removeEventListener('close', onClose);
      dlgConfirm.removeEventListener('click', onConfirm);
      if (dialog.returnValue !== 'confirm') {
        (opener.hidden ? runTitle : opener).focus();
        return;
      }
      try {
        const path = `/api/outbound_calls/runs/${encodeURIComponent(run.id)}/${force ? 'force-cancel' : 'cancel'}`;
        const data = await api.post(path);
        showRun(data.run);
        say(runMessages, 'success', force
          ? `Run #${run.id} was force-cancelled: ${data.jobs_cancelled} queued call${data.jobs_cancelled === 1 ? '' : 's'} cancelled, ${data.calls_hangup_requested} live call${data.calls_hangup_requested === 1 ? '' : 's'} hung up.`
          : `Cancel requested for run #${run.id}: ${data.jobs_cancelled} queued call${data.jobs_cancelled === 1 ? '' : 's'} cancelled.`);
        loadRuns();
        startPolling();
      } catch (err) {
        say(runMessages, 'error', err.code === 'run_finished' ? 'The run has already ended.' : errorText(err));
        startPolling();
      }
      runTitle.setAttribute('tabindex', '-1');
      (opener.hidden ? runTitle : opener).focus();
    };
    const onConfirm = () => dialog.close('confirm');
    dialog.addEventListener('close', onClose);
    dlgConfirm.addEventListener('click', onConfirm);
    dialog.showModal();
    dlgKeep.focus();
  }

  /* ---------------------------------------------------------------- history, jobs, calls */
  async function loadRuns() {
    runsSlot.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get('/api/outbound_calls/runs', { page: state.runsPage, page_size: 20 });
      runsSlot.replaceChildren(
        data.items.length
          ? table('Runs', ['Run', 'Status', 'Progress', 'Completed', 'Failed', 'Cancelled', 'Concurrency', 'Created', 'Ended', 'Jobs'],
            data.items.map((r) => h('tr', {},
              h('td', {}, `#${r.id}`),
              h('td', {}, statusBadge(r.status), r.last_error ? h('div', { class: 'small muted' }, r.last_error) : null),
              h('td', {}, `${r.progress_pct}%`),
              h('td', {}, `${r.completed} / ${r.total}`),
              h('td', {}, String(r.failed)),
              h('td', {}, String(r.cancelled)),
              h('td', {}, String(r.concurrency)),
              h('td', {}, time(r.created_at)),
              h('td', {}, time(r.ended_at)),
              h('td', {}, h('button', {
                type: 'button', class: 'secondary', 'aria-pressed': state.jobsRun === r.id ? 'true' : 'false',
                onclick: () => { state.jobsRun = r.id; state.jobsPage = 1; loadJobs(true); loadRuns(); },
              }, `Jobs of run #${r.id}`)))))
          : h('p', {}, 'No runs yet.'),
        pager(data, 'Runs', (p) => {
          state.runsPage = p;
          loadRuns();
        }));
    } catch (err) {
      say(runsSlot, 'error', errorText(err));
    } finally {
      runsSlot.removeAttribute('aria-busy');
    }
  }

  async function loadJobs(focus) {
    const id = state.jobsRun;
    if (id == null) return;
    try {
      const data = await api.get(`/api/outbound_calls/runs/${encodeURIComponent(id)}/jobs`, { page: state.jobsPage, page_size: 50 });
      const title = h('h3', { tabindex: '-1' }, `Jobs of run #${id}`);
      jobsSlot.replaceChildren(title,
        data.items.length
          ? table(`Jobs of run #${id}`, ['Lead', 'Phone', 'Status', 'Attempts', 'Error', 'Digits', 'Answered by', 'Started', 'Completed'],
            data.items.map((j) => h('tr', {},
              h('td', {}, j.lead_name || `#${j.lead_id}`),
              h('td', {}, j.phone),
              h('td', {}, statusBadge(j.status), j.call_status ? h('div', { class: 'small muted' }, j.call_status) : null),
              h('td', {}, String(j.attempts)),
              h('td', {}, j.error_code || j.error_message
                ? [j.error_code ? h('code', {}, j.error_code) : null, j.error_message ? h('div', { class: 'small' }, j.error_message) : null]
                : '—'),
              h('td', {}, j.digits ?? '—'),
              h('td', {}, j.answered_by ?? '—'),
              h('td', {}, time(j.started_at)),
              h('td', {}, time(j.completed_at)))))
          : h('p', {}, 'This run has no jobs.'),
        pager(data, 'Jobs', (p) => {
          state.jobsPage = p;
          loadJobs(false);
        }));
      if (focus) title.focus();
    } catch (err) {
      say(jobsSlot, 'error', errorText(err));
    }
  }

  async function loadCalls() {
    callsSlot.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get('/api/calls', { page: state.callsPage, page_size: 25 });
      callsSlot.replaceChildren(
        data.items.length
          ? table('Call log', ['Time', 'Direction', 'From', 'To', 'Status', 'Duration', 'Run', 'Error'],
            data.items.map((c) => h('tr', {},
              h('td', {}, time(c.created_at)),
              h('td', {}, c.direction),
              h('td', {}, c.from_number ?? '—'),
              h('td', {}, c.to_number ?? '—'),
              h('td', {}, c.status),
              h('td', {}, c.duration == null ? '—' : `${c.duration} s`),
              h('td', {}, c.run_id == null ? '—' : `#${c.run_id}`),
              h('td', {}, c.error_code || c.error_message ? `${c.error_code ?? ''} ${c.error_message ?? ''}`.trim() : '—'))))
          : h('p', {}, 'No calls yet.'),
        pager(data, 'Calls', (p) => {
          state.callsPage = p;
          loadCalls();
        }));
    } catch (err) {
      say(callsSlot, 'error', errorText(err));
    } finally {
      callsSlot.removeAttribute('aria-busy');
    }
  }
}

function notice2(kind, text) {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status', tabindex: '-1' }, text);
}
