/*
 * access.js - what the signed-in user may see, from GET /api/me. It mirrors
 * the server's guards (src/auth/roles.c, src/api/routes.c) only to decide
 * what to show: the server still decides what is allowed.
 */

/* Roles are "at least": agent < admin < owner < system_admin. */
export const ROLE_RANK = Object.freeze({ agent: 1, admin: 2, owner: 3, system_admin: 4 });

/* The page registry: key, label and minimum role. */
export const PAGES = Object.freeze({
  calls_outbound: { label: 'Outbound calls', minRole: 'agent' },
  whatsapp_flows: { label: 'WhatsApp flows', minRole: 'agent' },
  contacts: { label: 'WhatsApp contacts', minRole: 'agent' },
  settings: { label: 'Settings and audit', minRole: 'owner' },
});

export const VIEW_LABELS = Object.freeze({
  home: 'Overview',
  users: 'Users',
  businesses: 'Businesses',
  audit: 'Audit',
  outbound: 'Outbound calls',
  flows: 'Flows',
  inbox: 'Inbox',
  settings: 'Settings',
});

export function atLeast(role, min) {
  return (ROLE_RANK[role] ?? 0) >= (ROLE_RANK[min] ?? Infinity);
}

/* The business has enabled the page and the role reaches its minimum. */
export function hasPage(me, key) {
  const page = PAGES[key];
  return Boolean(page) && me.pages.includes(key) && atLeast(me.user.role, page.minRole);
}

/* Users: admins read (GET /api/users), owners change (POST, PATCH). */
export function canListUsers(me) {
  return me.business !== null && atLeast(me.user.role, 'admin');
}

export function canManageUsers(me) {
  return me.business !== null && atLeast(me.user.role, 'owner');
}

/* The roles this user may give to a tenant user. */
export function assignableRoles(me) {
  return ['agent', 'admin', 'owner'].filter((r) => atLeast(me.user.role, r));
}

/*
 * The audit trail: a system_admin reads every tenant's (GET /api/admin/audit),
 * an owner their own when the business has the settings page (GET /api/audit).
 */
export function auditScope(me) {
  if (me.user.role === 'system_admin') return 'all';
  if (me.business !== null && hasPage(me, 'settings')) return 'tenant';
  return null;
}

/* The views the navigation offers, in order. */
export function allowedViews(me) {
  const views = ['home'];
  if (canListUsers(me)) views.push('users');
  if (me.business !== null && hasPage(me, 'calls_outbound')) views.push('outbound');
  if (me.business !== null && hasPage(me, 'whatsapp_flows')) views.push('flows');
  if (me.business !== null && hasPage(me, 'contacts')) views.push('inbox');
  if (me.business !== null && hasPage(me, 'settings')) views.push('settings');
  if (me.user.role === 'system_admin') views.push('businesses');
  if (auditScope(me) !== null) views.push('audit');
  return views;
}

export function defaultView(me) {
  return me.user.role === 'system_admin' && me.business === null ? 'businesses' : 'home';
}
