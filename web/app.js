/*
 * app.js - the admin UI's entry point: resume or start a session, draw the
 * header (user, role, business, impersonation banner), offer the views the
 * user's role and pages allow, and route #/view to them.
 */
import * as api from './api.js';
import { VIEW_LABELS, allowedViews, defaultView } from './access.js';
import { describeError, h, notice } from './dom.js';
import * as audit from './views/audit.js';
import * as businesses from './views/businesses.js';
import * as flows from './views/flows.js';
import * as home from './views/home.js';
import * as inbox from './views/inbox.js';
import * as login from './views/login.js';
import * as outbound from './views/outbound.js';
import * as settings from './views/settings.js';
import * as users from './views/users.js';

const VIEWS = { home, users, businesses, audit, outbound, flows, inbox, settings };
const TOAST_MS = 8000;

const el = {
  header: document.getElementById('app-header'),
  nav: document.getElementById('nav-list'),
  whoami: document.getElementById('whoami'),
  logout: document.getElementById('logout'),
  banner: document.getElementById('impersonation'),
  bannerText: document.getElementById('impersonation-text'),
  stopActing: document.getElementById('stop-acting'),
  main: document.getElementById('main'),
  status: document.getElementById('status'),
  skip: document.getElementById('skip-link'),
};

let me = null; /* GET /api/me of the signed-in user, null when signed out */
let toastTimer = 0;

/* A short message in the polite live region, shown for a few seconds. */
function announce(text) {
  clearTimeout(toastTimer);
  el.status.textContent = text;
  toastTimer = setTimeout(() => {
    el.status.textContent = '';
  }, TOAST_MS);
}

function currentView() {
  const m = /^#\/([a-z]+)$/.exec(window.location.hash);
  return m ? m[1] : null;
}

async function loadMe() {
  try {
    me = await api.get('/api/me');
  } catch (err) {
    if (err.status !== 404 || api.actingBusiness() === null) throw err;
    /* the business named by X-Business-Id is gone */
    api.setActingBusiness(null);
    me = await api.get('/api/me');
    announce('That business no longer exists, so you no longer act for it.');
  }
  renderHeader();
}

function labelled(label, value, cls) {
  return h('span', { class: cls }, h('span', { class: 'visually-hidden' }, `${label}: `), value);
}

function renderHeader() {
  const { user, business, impersonating } = me;
  el.whoami.replaceChildren(
    labelled('Signed in as', user.name || user.email, 'who'),
    labelled('Role', user.role, 'badge role'),
    labelled('Business', business ? business.name : 'Platform', 'biz'),
  );
  el.banner.hidden = !impersonating;
  if (impersonating) {
    el.bannerText.replaceChildren('You are acting for ', h('strong', {}, business.name),
      ` (business #${business.id}) as a system administrator. Every request is audited.`);
  }
  renderNav();
  el.header.hidden = false;
}

function renderNav() {
  const active = currentView();
  el.nav.replaceChildren(...allowedViews(me).map((v) => h('li', {},
    h('a', { href: `#/${v}`, 'aria-current': v === active ? 'page' : false }, VIEW_LABELS[v]))));
}

function context() {
  return { me, actAs, refreshMe, navigate };
}

/* Render the view named by the hash (or the user's default) into <main>. */
function route({ focus = true } = {}) {
  if (me === null) return;
  let view = currentView();
  if (!view || !allowedViews(me).includes(view)) {
    view = defaultView(me);
    window.history.replaceState(null, '', `#/${view}`);
  }
  renderNav();
  const section = h('div', { class: 'view' });
  el.main.replaceChildren(section);
  document.title = `${VIEW_LABELS[view]} · dialflow admin`;
  try {
    VIEWS[view].render(section, context());
  } catch (err) {
    console.error(err);
    section.replaceChildren(notice('error', 'This view failed to load. Reload the page to try again.'));
  }
  if (focus) (section.querySelector('h1') ?? el.main).focus();
}

function navigate(view) {
  if (currentView() === view) route();
  else window.location.hash = `#/${view}`;
}

async function refreshMe() {
  await loadMe();
}

/* system_admin: send X-Business-Id: id from now on. */
async function actAs(id) {
  api.setActingBusiness(id);
  try {
    await loadMe();
  } catch (err) {
    api.setActingBusiness(null);
    announce(describeError(err));
    return;
  }
  announce(`You are now acting for ${me.business.name}.`);
  navigate('home');
}

async function stopActing() {
  api.setActingBusiness(null);
  try {
    await loadMe();
  } catch (err) {
    announce(describeError(err));
    return;
  }
  announce('You no longer act for a business.');
  navigate(defaultView(me));
}

function showLogin(message) {
  me = null;
  el.header.hidden = true;
  el.banner.hidden = true;
  document.title = 'Sign in · dialflow admin';
  login.render(el.main, {
    message,
    onSignedIn: async () => {
      await loadMe();
      route();
      announce(`Signed in as ${me.user.email}.`);
    },
  });
}

async function logout() {
  el.logout.disabled = true;
  try {
    await api.logout();
  } catch {
    /* the tokens are forgotten here whatever the server answered */
  } finally {
    el.logout.disabled = false;
  }
  showLogin('You have signed out.');
}

async function start() {
  api.onSessionLost(() => showLogin('Your session has ended. Please sign in again.'));
  el.logout.addEventListener('click', logout);
  el.stopActing.addEventListener('click', stopActing);
  el.skip.addEventListener('click', (ev) => {
    ev.preventDefault(); /* the hash is the router's */
    (el.main.querySelector('h1') ?? el.main).focus();
  });
  window.addEventListener('hashchange', () => {
    if (currentView() !== null) route();
  });

  if (api.hasSession()) {
    try {
      if (await api.refreshSession()) {
        await loadMe();
        route();
        return;
      }
    } catch (err) {
      showLogin(describeError(err));
      return;
    }
  }
  showLogin();
}

start();
