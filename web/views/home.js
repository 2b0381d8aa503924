/* home.js - the overview: who is signed in, for which business, with which features. */
import { PAGES, VIEW_LABELS, allowedViews, hasPage } from '../access.js';
import { h, mount } from '../dom.js';

export function render(root, { me }) {
  const { user, business } = me;
  const features = Object.keys(PAGES).filter((key) => hasPage(me, key));
  const views = allowedViews(me).filter((v) => v !== 'home');

  mount(root,
    h('h1', { tabindex: '-1' }, 'Overview'),
    h('section', { class: 'card', 'aria-labelledby': 'home-you' },
      h('h2', { id: 'home-you' }, 'Signed in'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Name'), h('dd', {}, user.name || '—'),
        h('dt', {}, 'Email'), h('dd', {}, user.email),
        h('dt', {}, 'Role'), h('dd', {}, user.role),
        h('dt', {}, 'Business'), h('dd', {}, business ? `${business.name} (#${business.id})` : 'None (platform administrator)'))),
    business
      ? h('section', { class: 'card', 'aria-labelledby': 'home-features' },
        h('h2', { id: 'home-features' }, 'Features available to you'),
        features.length
          ? h('ul', {}, features.map((key) => h('li', {}, PAGES[key].label)))
          : h('p', {}, 'No features are enabled for your role in this business yet. A system administrator enables them.'))
      : null,
    views.length
      ? h('section', { class: 'card', 'aria-labelledby': 'home-admin' },
        h('h2', { id: 'home-admin' }, 'Administration'),
        h('ul', {}, views.map((v) => h('li', {}, h('a', { href: `#/${v}` }, VIEW_LABELS[v])))))
      : null,
  );
}
