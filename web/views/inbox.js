/*
 * inbox.js - page contacts: the WhatsApp contacts waiting for a human
 * (GET /api/contacts?needs_human=true), a contact's conversation (GET
 * /api/contacts/{id}, oldest first), an agent's reply (POST .../messages)
 * and Resolve (POST .../handover/resolve), which hands the contact back to the bot.
 *
 * Accessible names (the browser tests rely on them; keep them stable):
 *   heading       "Inbox" (h1)
 *   list          table caption "Contacts needing a human"; per row button "Open <name or wa_id>"
 *                 empty state text "No contact needs a human right now."
 *   conversation  region "Conversation with <name or wa_id>" (h2 of that text); an ordered list
 *                 labelled "Messages", each item starting with its sender: "Contact", "Bot", "Agent" or "System"
 *   reply         textarea label "Reply"; button "Send reply"
 *   resolve       button "Resolve"; then a status "<name> was handed back to the bot."
 *   refresh       button "Refresh inbox"
 * Polls the open conversation and the list every 5 s while the tab is visible.
 */
import * as api from '../api.js';
import { errorText, h, mount, nextId, pager, say, table, time } from '../dom.js';

const POLL_MS = 5000;

function senderOf(m) {
  if (m.direction === 'in') return 'Contact';
  if (m.sender === 'agent') return 'Agent';
  if (m.sender === 'system') return 'System';
  return 'Bot';
}

function textOf(m) {
  if (m.text) return m.text;
  const p = m.payload ?? {};
  const t = p.interactive?.body?.text ?? p.interactive?.button_reply?.title ?? p.interactive?.list_reply?.title
    ?? p.button?.text ?? p.image?.caption ?? null;
  return t ?? `[${m.type}]`;
}

export function render(root) {
  const state = { page: 1, open: null, timer: 0 };
  const messages = h('div', { class: 'messages' });
  const listSlot = h('div', { class: 'list' });
  const convo = h('section', { class: 'card conversation', hidden: true });

  mount(root,
    h('h1', { tabindex: '-1' }, 'Inbox'),
    h('p', { class: 'lead' }, 'WhatsApp contacts the bot handed over to a person. Reply, then resolve to give them back to the bot.'),
    messages,
    h('div', { class: 'inbox' },
      h('section', { 'aria-labelledby': 'inbox-list-title', class: 'inbox-list' },
        h('div', { class: 'section-head' }, h('h2', { id: 'inbox-list-title' }, 'Waiting for a human'),
          h('button', { type: 'button', class: 'secondary', onclick: () => { loadList(); if (state.open) loadContact(state.open, false); } }, 'Refresh inbox')),
        listSlot),
      convo));

  loadList();
  schedule();

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(async () => {
      if (!root.isConnected) return;
      if (document.visibilityState === 'visible') {
        await loadList(true);
        if (state.open && !convo.contains(document.activeElement)) await loadContact(state.open, false, true);
      }
      schedule();
    }, POLL_MS);
  }

  async function loadList(quiet = false) {
    if (!quiet) listSlot.setAttribute('aria-busy', 'true');
    try {
      const data = await api.get('/api/contacts', { needs_human: 'true', page: state.page, page_size: 50 });
      mount(listSlot,
        data.items.length
          ? table('Contacts needing a human', ['Contact', 'Reason', 'Waiting since', 'Flow', ''],
            data.items.map((c) => {
              const who = c.name || c.wa_id;
              return h('tr', { class: state.open === c.id ? 'selected' : null },
                h('td', {}, h('strong', {}, who), c.name ? h('div', { class: 'small muted' }, `+${c.wa_id}`) : null),
                h('td', {}, c.handover_reason || '—'),
                h('td', {}, time(c.handover_requested_at ?? c.last_message_at)),
                h('td', {}, c.current_flow ? `${c.current_flow}${c.current_step ? ` · ${c.current_step}` : ''}` : '—'),
                h('td', {}, h('button', {
                  type: 'button', class: 'secondary', 'aria-pressed': state.open === c.id ? 'true' : 'false',
                  onclick: () => loadContact(c.id, true),
                }, `Open ${who}`)));
            }))
          : h('p', { class: 'empty' }, 'No contact needs a human right now.'),
        data.total > data.page_size ? pager(data, 'Contacts', (p) => { state.page = p; loadList(); }) : null);
    } catch (err) {
      if (!quiet) say(listSlot, 'error', errorText(err));
    } finally {
      listSlot.removeAttribute('aria-busy');
    }
  }

  async function loadContact(id, focus, quiet = false) {
    state.open = id;
    try {
      const data = await api.get(`/api/contacts/${encodeURIComponent(id)}`);
      if (state.open !== id) return;
      drawConversation(data, focus, quiet);
    } catch (err) {
      if (quiet) return;
      convo.hidden = false;
      convo.replaceChildren(h('h2', {}, 'Conversation'), h('p', { class: 'notice error', role: 'alert' }, errorText(err)));
    }
  }

  function drawConversation({ contact, flow_state: flow, messages: msgs }, focus, quiet) {
    const who = contact.name || contact.wa_id;
    const titleId = nextId('convo-title');
    const list = h('ol', { class: 'messages-list', 'aria-label': 'Messages' },
      msgs.length
        ? msgs.map((m) => {
          const from = senderOf(m);
          return h('li', { class: `msg msg-${from.toLowerCase()}` },
            h('div', { class: 'msg-meta' }, h('strong', {}, from), ' · ', time(m.created_at),
              m.direction === 'out' ? h('span', { class: 'small muted' }, ` · ${m.status}`) : null),
            h('div', { class: 'msg-text' }, textOf(m)));
        })
        : h('li', { class: 'muted' }, 'No messages yet.'));
    const replyId = nextId('reply');
    const reply = h('textarea', { id: replyId, name: 'text', rows: '3', maxlength: '4096', required: true });
    const formMsg = h('div', {});
    const send = h('button', { type: 'submit' }, 'Send reply');
    const form = h('form', { class: 'reply-form', 'aria-label': `Reply to ${who}` },
      formMsg,
      h('div', { class: 'field' }, h('label', { for: replyId }, 'Reply'), reply),
      h('div', { class: 'actions' }, send,
        contact.needs_human
          ? h('button', { type: 'button', class: 'secondary', onclick: () => resolve(contact) }, 'Resolve')
          : h('span', { class: 'badge' }, 'Handled by the bot')));

    /* keep a reply being typed across refreshes */
    const old = convo.querySelector('textarea');
    if (quiet && old) reply.value = old.value;

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const text = reply.value.trim();
      if (!text) {
        say(formMsg, 'error', 'Write a reply first.');
        reply.focus();
        return;
      }
      send.disabled = true;
      try {
        await api.post(`/api/contacts/${encodeURIComponent(contact.id)}/messages`, { text });
        reply.value = '';
        await loadContact(contact.id, false);
        say(convo.querySelector('.reply-form > div'), 'success', 'Reply queued.');
        convo.querySelector('textarea')?.focus();
      } catch (err) {
        send.disabled = false;
        say(formMsg, 'error', errorText(err));
        reply.focus();
      }
    });

    convo.hidden = false;
    convo.setAttribute('aria-labelledby', titleId);
    convo.replaceChildren(
      h('h2', { id: titleId, tabindex: '-1' }, `Conversation with ${who}`),
      h('dl', { class: 'facts small' },
        h('dt', {}, 'WhatsApp'), h('dd', {}, `+${contact.wa_id}`),
        contact.handover_reason ? [h('dt', {}, 'Reason'), h('dd', {}, contact.handover_reason)] : null,
        flow ? [h('dt', {}, 'Flow'), h('dd', {}, `${flow.flow_name} · step ${flow.current_step}`)] : null),
      list,
      form);
    list.lastElementChild?.scrollIntoView?.({ block: 'nearest' });
    if (focus) convo.querySelector('h2').focus();
    loadList(true);
  }

  async function resolve(contact) {
    const who = contact.name || contact.wa_id;
    try {
      await api.post(`/api/contacts/${encodeURIComponent(contact.id)}/handover/resolve`);
      state.open = null;
      convo.hidden = true;
      convo.replaceChildren();
      await loadList();
      say(messages, 'success', `${who} was handed back to the bot.`)?.focus();
    } catch (err) {
      say(messages, 'error', errorText(err))?.focus();
    }
  }
}
