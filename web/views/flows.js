/*
 * flows.js - WhatsApp flows (page whatsapp_flows): the list (GET /api/flows),
 * activate/deactivate (admins), a JSON editor (POST /api/flows, PUT
 * /api/flows/{id}) whose 422 invalid_flow problems are listed with their
 * path and highlighted in the graph, a read-only SVG graph of the steps and
 * transitions, and a simulator (POST /api/flows/{id}/simulate).
 * Agents read; admins write.
 */
import * as api from '../api.js';
import { atLeast } from '../access.js';
import { busy, errorText, field, h, mount, nextId, say, table, time } from '../dom.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const BOX_W = 170;
const BOX_H = 50;
const COL_GAP = 90;
const ROW_GAP = 28;
const PAD = 16;

const TEMPLATE = {
  name: 'New flow',
  trigger_keywords: ['hello'],
  steps: [
    {
      name: 'welcome',
      type: 'send_message',
      is_entry_point: true,
      config: { message_type: 'text', text: { body: 'Hello! How can we help?' } },
      transitions: [{ to_step: 'bye', condition_config: { type: 'always_true' } }],
    },
    { name: 'bye', type: 'end_flow', config: { message_config: { message_type: 'text', text: { body: 'Goodbye.' } } } },
  ],
};

export function render(root, { me }) {
  const canWrite = atLeast(me.user.role, 'admin');
  const messages = h('div', { class: 'messages' });
  const list = h('div', { class: 'list' });
  const editorSlot = h('div', { class: 'flow-editor-slot' });

  mount(root,
    h('h1', { tabindex: '-1' }, 'WhatsApp flows'),
    h('p', { class: 'lead' }, canWrite
      ? 'Conversational flows the WhatsApp bot runs. Edit a flow as JSON, check its graph, and try it in the simulator.'
      : 'Conversational flows the WhatsApp bot runs. You can read them and try them in the simulator.'),
    messages,
    h('section', { 'aria-labelledby': 'flows-list-title' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'flows-list-title' }, 'Flows'),
        canWrite ? h('button', { type: 'button', onclick: () => openEditor(null) }, 'New flow') : null),
      list),
    editorSlot,
  );
  load();

  async function load() {
    list.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get('/api/flows', { page: 1, page_size: 200 });
      const items = data.items ?? [];
      list.replaceChildren(items.length
        ? table('Flows of this business', ['Name', 'Version', 'Status', 'Trigger keywords', 'Updated', 'Actions'],
          items.map(row))
        : h('p', {}, canWrite ? 'No flows yet. Create one with "New flow".' : 'No flows yet.'));
    } catch (err) {
      say(list, 'error', errorText(err));
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  function row(f) {
    return h('tr', { 'data-flow-id': f.id },
      h('th', { scope: 'row' }, f.name),
      h('td', {}, f.version ?? '—'),
      h('td', {}, f.is_active ? h('span', { class: 'badge active' }, 'Active') : h('span', { class: 'badge inactive' }, 'Inactive')),
      h('td', {}, (f.trigger_keywords ?? []).join(', ') || '—'),
      h('td', {}, time(f.updated_at)),
      h('td', {}, h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'secondary', 'aria-label': `Open ${f.name}`, onclick: () => openEditor(f.id) }, 'Open'),
        canWrite
          ? h('button', {
            type: 'button',
            class: f.is_active ? 'danger' : 'secondary',
            'aria-label': `${f.is_active ? 'Deactivate' : 'Activate'} ${f.name}`,
            onclick: (ev) => toggle(f, ev.currentTarget),
          }, f.is_active ? 'Deactivate' : 'Activate')
          : null)));
  }

  async function toggle(f, button) {
    button.disabled = true;
    try {
      const res = await api.post(`/api/flows/${f.id}/${f.is_active ? 'deactivate' : 'activate'}`);
      const flow = res?.flow ?? {};
      say(messages, 'success', `${f.name} is now ${flow.is_active ?? !f.is_active ? 'active' : 'inactive'}.`);
      await load();
    } catch (err) {
      button.disabled = false;
      say(messages, 'error', errorText(err));
    }
  }

  async function openEditor(id) {
    say(messages, null, null);
    if (id === null) {
      editorSlot.replaceChildren(editor(null, JSON.stringify(TEMPLATE, null, 2)));
      editorSlot.querySelector('textarea')?.focus();
      return;
    }
    editorSlot.replaceChildren(h('p', { 'aria-busy': 'true' }, 'Loading the flow…'));
    try {
      const { flow } = await api.get(`/api/flows/${id}`);
      editorSlot.replaceChildren(editor(flow, JSON.stringify(flow.definition ?? {}, null, 2)));
      editorSlot.querySelector('h2')?.focus();
    } catch (err) {
      say(editorSlot, 'error', errorText(err));
    }
  }

  /* The editor card: definition + problems, graph, simulator. */
  function editor(flow, text) {
    let current = flow; /* the saved flow, null until the first save */
    let problems = [];
    const titleId = nextId('flow-editor');
    const title = h('h2', { id: titleId, tabindex: '-1' }, flow ? `Flow: ${flow.name}` : 'New flow');
    const def = field('Flow definition', {
      tag: 'textarea', name: 'definition', rows: '22', spellcheck: 'false', class: 'code', readonly: !canWrite,
    }, canWrite ? 'JSON: {name, trigger_keywords, steps: [{name, type, is_entry_point, config, transitions}]}.' : null);
    def.input.value = text;
    const problemsBox = h('div', { class: 'flow-problems', role: 'region', 'aria-label': 'Problems', 'aria-live': 'polite' });
    const formMsg = h('div', { class: 'form-messages' });
    const graphBox = h('div', { class: 'flow-graph', role: 'region', 'aria-label': 'Flow graph', tabindex: '0' });
    const form = h('form', { class: 'flow-form', 'aria-labelledby': titleId },
      formMsg, def.wrap,
      canWrite ? h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save')) : null);
    const sim = simulator(() => current);

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!canWrite) return;
      say(formMsg, null, null);
      let body;
      try {
        body = JSON.parse(def.input.value);
      } catch (err) {
        showProblems([{ path: '(json)', message: `Not valid JSON: ${err.message}` }]);
        return;
      }
      const done = busy(form);
      try {
        const res = current
          ? await api.put(`/api/flows/${current.id}`, body)
          : await api.post('/api/flows', body);
        done();
        current = res?.flow ?? current;
        if (current) title.textContent = `Flow: ${current.name}`;
        showProblems([]);
        say(formMsg, 'success', `Saved${current?.version ? ` (version ${current.version})` : ''}.`);
        sim.reset();
        await load();
      } catch (err) {
        done();
        if (err.code === 'invalid_flow' || err.problems.length) {
          showProblems(err.problems.length ? err.problems : [{ path: '', message: err.message }]);
        } else {
          say(formMsg, 'error', errorText(err));
        }
      }
    });

    let timer = 0;
    def.input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(drawGraph, 300);
    });

    function showProblems(list) {
      problems = list;
      if (!list.length) {
        problemsBox.replaceChildren();
        def.input.removeAttribute('aria-invalid');
        drawGraph();
        return;
      }
      const steps = parsedSteps();
      def.input.setAttribute('aria-invalid', 'true');
      problemsBox.replaceChildren(
        h('h3', {}, `${list.length} problem${list.length === 1 ? '' : 's'} in the definition`),
        h('ul', { class: 'problem-list' }, list.map((p) => {
          const idx = stepIndex(p.path);
          const stepName = idx !== null && steps?.[idx]?.name ? ` (step "${steps[idx].name}")` : '';
          return h('li', { 'data-path': p.path ?? '' },
            h('code', { class: 'problem-path' }, p.path || '(flow)'), stepName, ': ', p.message ?? '');
        })));
      drawGraph();
      problemsBox.focus?.();
    }

    function parsedSteps() {
      try {
        const d = JSON.parse(def.input.value);
        return Array.isArray(d?.steps) ? d.steps : null;
      } catch {
        return null;
      }
    }

    function drawGraph() {
      const steps = parsedSteps();
      if (steps === null) {
        graphBox.replaceChildren(h('p', { class: 'muted' }, 'The graph appears when the definition is valid JSON with a steps array.'));
        return;
      }
      const bad = new Set(problems.map((p) => stepIndex(p.path)).filter((i) => i !== null));
      graphBox.replaceChildren(graph(steps, bad));
    }

    drawGraph();
    return h('section', { class: 'card flow-editor', 'aria-labelledby': titleId },
      title,
      flow ? h('p', { class: 'muted' }, `Version ${flow.version ?? '—'} · ${flow.is_active ? 'active' : 'inactive'}`) : null,
      h('div', { class: 'flow-edit-grid' }, form, problemsBox),
      h('h3', {}, 'Graph'),
      graphBox,
      sim.node);
  }
}

/* "steps[2].config.reply_config" -> 2, else null. */
function stepIndex(path) {
  const m = /^steps\[(\d+)\]/.exec(path ?? '');
  return m ? Number(m[1]) : null;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined && v !== false) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function clip(s, n) {
  const t = String(s ?? '');
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

/*
 * A layered layout: BFS depth from the entry step gives the column, the
 * order of discovery within a column the row. Unreachable steps go to a last
 * column. Transitions are arrows labelled with their condition type.
 */
export function layout(steps) {
  const byName = new Map();
  steps.forEach((s, i) => {
    if (s && typeof s.name === 'string' && !byName.has(s.name)) byName.set(s.name, i);
  });
  let entry = steps.findIndex((s) => s?.is_entry_point === true);
  if (entry < 0) entry = 0;
  const depth = new Array(steps.length).fill(-1);
  const queue = [];
  if (steps.length) {
    depth[entry] = 0;
    queue.push(entry);
  }
  while (queue.length) {
    const i = queue.shift();
    for (const t of Array.isArray(steps[i]?.transitions) ? steps[i].transitions : []) {
      const j = byName.get(t?.to_step);
      if (j !== undefined && depth[j] < 0) {
        depth[j] = depth[i] + 1;
        queue.push(j);
      }
    }
  }
  const maxDepth = Math.max(0, ...depth);
  const orphanCol = depth.some((d) => d < 0) ? maxDepth + 1 : maxDepth;
  const rows = new Map();
  /* the BFS discovery order within each column */
  const seen = [];
  const q2 = steps.length ? [entry] : [];
  const mark = new Set(q2);
  while (q2.length) {
    const i = q2.shift();
    seen.push(i);
    for (const t of Array.isArray(steps[i]?.transitions) ? steps[i].transitions : []) {
      const j = byName.get(t?.to_step);
      if (j !== undefined && !mark.has(j)) {
        mark.add(j);
        q2.push(j);
      }
    }
  }
  const pos = new Array(steps.length);
  for (const i of [...seen, ...steps.map((_, k) => k).filter((k) => depth[k] < 0)]) {
    const col = depth[i] >= 0 ? depth[i] : orphanCol;
    const r = rows.get(col) ?? 0;
    rows.set(col, r + 1);
    pos[i] = { col, row: r };
  }
  const edges = [];
  steps.forEach((s, i) => {
    (Array.isArray(s?.transitions) ? s.transitions : []).forEach((t) => {
      const j = byName.get(t?.to_step);
      edges.push({ from: i, to: j ?? null, target: t?.to_step, label: t?.condition_config?.type ?? '?' });
    });
  });
  return { pos, edges, cols: orphanCol + 1, rows: Math.max(1, ...rows.values()), entry };
}

function graph(steps, bad) {
  if (!steps.length) return h('p', { class: 'muted' }, 'This flow has no steps.');
  const { pos, edges, cols, rows, entry } = layout(steps);
  const x = (i) => PAD + pos[i].col * (BOX_W + COL_GAP);
  const y = (i) => PAD + pos[i].row * (BOX_H + ROW_GAP);
  const width = PAD * 2 + cols * BOX_W + (cols - 1) * COL_GAP;
  const height = PAD * 2 + rows * BOX_H + (rows - 1) * ROW_GAP + 30;
  const markerId = nextId('arrow');
  const defs = svg('defs', {},
    svg('marker', { id: markerId, viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'graph-arrowhead' })));
  const edgeEls = edges.map((e) => {
    const x1 = x(e.from) + BOX_W;
    const y1 = y(e.from) + BOX_H / 2;
    if (e.to === null) {
      return svg('g', { class: 'graph-edge missing' },
        svg('line', { x1, y1, x2: x1 + COL_GAP / 2, y2: y1, 'marker-end': `url(#${markerId})` }),
        svg('text', { x: x1 + 4, y: y1 - 6, class: 'graph-edge-label' }, `${clip(e.label, 18)} → ${clip(e.target, 12)}?`));
    }
    let d;
    let lx;
    let ly;
    if (pos[e.to].col > pos[e.from].col) {
      const x2 = x(e.to);
      const y2 = y(e.to) + BOX_H / 2;
      const mx = (x1 + x2) / 2;
      d = `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`;
      lx = mx;
      ly = (y1 + y2) / 2 - 5;
    } else {
      /* back or same-column edge: loop under the boxes */
      const sx = x(e.from) + BOX_W / 2;
      const sy = y(e.from) + BOX_H;
      const tx = x(e.to) + BOX_W / 2 + (e.to === e.from ? 20 : 0);
      const ty = y(e.to) + BOX_H;
      const dip = Math.max(sy, ty) + 26;
      d = `M ${sx} ${sy} C ${sx} ${dip}, ${tx} ${dip}, ${tx} ${ty}`;
      lx = (sx + tx) / 2;
      ly = dip - 2;
    }
    return svg('g', { class: 'graph-edge', 'data-from': steps[e.from]?.name ?? '', 'data-to': e.target ?? '' },
      svg('path', { d, 'marker-end': `url(#${markerId})` }),
      svg('text', { x: lx, y: ly, 'text-anchor': 'middle', class: 'graph-edge-label' }, clip(e.label, 24)));
  });
  const boxes = steps.map((s, i) => svg('g', {
    class: `graph-step${bad.has(i) ? ' problem' : ''}${i === entry ? ' entry' : ''}`,
    'data-step': s?.name ?? '',
    transform: `translate(${x(i)} ${y(i)})`,
  },
  svg('title', {}, `${s?.name ?? '(no name)'} (${s?.type ?? 'no type'})${bad.has(i) ? ' — has problems' : ''}`),
  svg('rect', { width: BOX_W, height: BOX_H, rx: '6', ry: '6' }),
  svg('text', { x: BOX_W / 2, y: 21, 'text-anchor': 'middle', class: 'graph-step-name' }, clip(s?.name ?? '(no name)', 22)),
  svg('text', { x: BOX_W / 2, y: 38, 'text-anchor': 'middle', class: 'graph-step-type' }, clip(s?.type ?? '?', 24))));
  return svg('svg', {
    class: 'flow-graph-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `Flow graph: ${steps.length} steps, ${edges.length} transitions`,
  }, defs, edgeEls, boxes);
}

/* The simulator: every send replays all messages so far through POST /simulate. */
function simulator(currentFlow) {
  const sent = [];
  const transcript = h('ol', { class: 'sim-transcript', 'aria-label': 'Transcript', 'aria-live': 'polite' });
  const finalBox = h('div', { class: 'sim-final' });
  const msg = h('div', { class: 'form-messages' });
  const input = field('Message', { name: 'message', autocomplete: 'off', maxlength: '4096' });
  const sendBtn = h('button', { type: 'submit' }, 'Send');
  const resetBtn = h('button', { type: 'button', class: 'secondary', onclick: reset }, 'Reset');
  const form = h('form', { class: 'sim-form' }, input.wrap, h('div', { class: 'actions' }, sendBtn, resetBtn));
  const titleId = nextId('sim');
  const node = h('section', { class: 'simulator', role: 'region', 'aria-labelledby': titleId },
    h('h3', { id: titleId }, 'Simulator'),
    h('p', { class: 'hint' }, 'A dry run of the saved flow: nothing is sent or stored.'),
    msg, transcript, finalBox, form);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = input.input.value.trim();
    if (text) await send(text);
  });

  async function send(text) {
    const flow = currentFlow();
    if (!flow) {
      say(msg, 'info', 'Save the flow first: the simulator runs the saved version.');
      return;
    }
    say(msg, null, null);
    sent.push(text);
    const done = busy(form);
    try {
      const res = await api.post(`/api/flows/${flow.id}/simulate`, { messages: sent });
      input.input.value = '';
      renderTranscript(res?.transcript ?? []);
      renderFinal(res?.final_state ?? null);
    } catch (err) {
      sent.pop();
      say(msg, 'error', errorText(err));
    } finally {
      done();
      input.input.focus();
    }
  }

  function renderTranscript(items) {
    transcript.replaceChildren(...items.map((item) => (item.from === 'user'
      ? h('li', { class: 'bubble user' }, h('span', { class: 'visually-hidden' }, 'You: '), item.text ?? '')
      : h('li', { class: 'bubble bot' }, h('span', { class: 'visually-hidden' }, 'Bot: '), botMessage(item.message ?? item)))));
  }

  function botMessage(m) {
    const type = m?.type ?? m?.message_type;
    if (type === 'text') return h('span', { class: 'sim-text' }, m.text?.body ?? '');
    if (type === 'interactive') {
      const it = m.interactive ?? {};
      const buttons = (it.action?.buttons ?? []).map((b) => b.reply ?? b);
      const rows = (it.action?.sections ?? []).flatMap((s) => s.rows ?? []);
      const choices = [...buttons, ...rows];
      return h('div', { class: 'sim-interactive' },
        it.header?.text ? h('strong', {}, it.header.text) : null,
        h('p', {}, it.body?.text ?? ''),
        choices.length
          ? h('div', { class: 'sim-buttons', role: 'group', 'aria-label': 'Reply buttons' },
            choices.map((c) => h('button', {
              type: 'button', class: 'secondary chip', onclick: () => send(String(c.id ?? c.title ?? '')),
            }, c.title ?? c.id ?? '?')))
          : null,
        it.footer?.text ? h('small', { class: 'muted' }, it.footer.text) : null);
    }
    if (type && m[type]) {
      const media = m[type];
      return h('span', { class: 'sim-text' }, `[${type}] ${media.caption ?? media.link ?? media.filename ?? ''}`);
    }
    return h('pre', { class: 'sim-raw' }, JSON.stringify(m, null, 2));
  }

  function renderFinal(state) {
    if (!state) {
      finalBox.replaceChildren();
      return;
    }
    let status = 'active';
    if (state.handover) status = 'handed over to a human';
    else if (state.ended) status = 'ended';
    else if (!state.active) status = 'not started (no trigger keyword matched)';
    finalBox.replaceChildren(
      h('h4', {}, 'Final state'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', { class: 'sim-status' }, status),
        h('dt', {}, 'Flow'), h('dd', {}, state.flow ?? '—'),
        h('dt', {}, 'Current step'), h('dd', { class: 'sim-step' }, state.current_step ?? '—'),
        state.error ? [h('dt', {}, 'Error'), h('dd', {}, state.error)] : null,
        h('dt', {}, 'Context'), h('dd', {}, h('pre', { class: 'sim-raw' }, JSON.stringify(state.context ?? {}, null, 2)))));
  }

  function reset() {
    sent.length = 0;
    transcript.replaceChildren();
    finalBox.replaceChildren();
    say(msg, null, null);
  }

  return { node, reset };
}
