/*
 * api.js - the one way the admin UI talks to the API (docs/openapi.yaml):
 * JSON in and out, the bearer token, X-Business-Id while a system_admin
 * acts for a tenant, one refresh-and-retry on 401, and every failure turned
 * into an ApiError with the server's code, message, fields and reason.
 *
 * The access token lives only in this module's memory. The refresh token is
 * kept in sessionStorage (this tab only), so a reload can resume the session
 * without asking for the password again.
 */

const REFRESH_KEY = 'dialflow.refresh_token';
const ACTING_KEY = 'dialflow.acting_business';

let accessToken = null;
let refreshing = null; /* the refresh in flight, shared by concurrent 401s */
let sessionLost = () => {};

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = Array.isArray(extra.fields) ? extra.fields : [];
    this.problems = Array.isArray(extra.problems) ? extra.problems : [];
    this.errors = Array.isArray(extra.errors) ? extra.errors : []; /* lead import: the row errors */
    this.reason = typeof extra.reason === 'string' ? extra.reason : null;
    this.retryAfter = Number.isFinite(extra.retryAfter) ? extra.retryAfter : null;
  }
}

/* What to say when the body is not our JSON error (nginx pages, network). */
const FALLBACK = {
  0: ['network_error', 'The server could not be reached.'],
  401: ['unauthenticated', 'Please sign in again.'],
  403: ['forbidden', 'You are not allowed to do this.'],
  404: ['not_found', 'Not found.'],
  413: ['payload_too_large', 'The request is too large.'],
  429: ['rate_limited', 'Too many requests.'],
  502: ['upstream_unavailable', 'The service is temporarily unavailable.'],
  503: ['db_unavailable', 'The service is temporarily unavailable.'],
  504: ['upstream_unavailable', 'The service is temporarily unavailable.'],
};

function storage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; /* storage disabled by the browser */
  }
}

/* Called once when the session cannot be renewed (the app shows the login). */
export function onSessionLost(fn) {
  sessionLost = fn;
}

export function hasSession() {
  return accessToken !== null || Boolean(storage()?.getItem(REFRESH_KEY));
}

function setTokens(data) {
  accessToken = data.access_token;
  storage()?.setItem(REFRESH_KEY, data.refresh_token);
}

export function clearSession() {
  accessToken = null;
  storage()?.removeItem(REFRESH_KEY);
  storage()?.removeItem(ACTING_KEY);
}

/* The business a system_admin acts for (sent as X-Business-Id), or null. */
export function actingBusiness() {
  const id = Number.parseInt(storage()?.getItem(ACTING_KEY) ?? '', 10);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

export function setActingBusiness(id) {
  if (id == null) storage()?.removeItem(ACTING_KEY);
  else storage()?.setItem(ACTING_KEY, String(id));
}

function buildUrl(path, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function send(method, url, body, auth, raw = null) {
  const headers = { Accept: 'application/json' };
  if (raw !== null) headers['Content-Type'] = raw.type;
  else if (body !== undefined) headers['Content-Type'] = 'application/json; charset=utf-8';
  if (auth && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  const acting = actingBusiness();
  if (auth && acting && !url.startsWith('/api/auth/')) headers['X-Business-Id'] = String(acting);
  try {
    return await fetch(url, {
      method,
      headers,
      body: raw !== null ? raw.body : body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, ...FALLBACK[0]);
  }
}

async function readJson(res) {
  if (!(res.headers.get('Content-Type') ?? '').includes('json')) return null;
  try {
    return await res.json();
  } catch {
    return null;
  }
}

function toError(res, data) {
  const e = data && typeof data.error === 'object' && data.error !== null ? data.error : {};
  const [code, message] = FALLBACK[res.status] ?? [`http_${res.status}`, `Request failed (${res.status}).`];
  const retryAfter = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
  return new ApiError(
    res.status,
    typeof e.code === 'string' ? e.code : code,
    typeof e.message === 'string' && e.message ? e.message : message,
    { fields: e.fields, problems: e.problems, errors: e.errors, reason: e.reason, retryAfter },
  );
}

async function parse(res) {
  if (res.status === 204) return null;
  const data = await readJson(res);
  if (!res.ok) throw toError(res, data);
  return data;
}

async function doRefresh() {
  const token = storage()?.getItem(REFRESH_KEY);
  if (!token) return false;
  const res = await send('POST', '/api/auth/refresh', { refresh_token: token }, false);
  if (res.status === 401 || res.status === 400) {
    clearSession();
    return false;
  }
  setTokens(await parse(res)); /* 429/503 throw and keep the session */
  return true;
}

/*
 * Renew the access token with the refresh token. Resolves true when renewed,
 * false when the session is over; throws ApiError on a transient failure.
 * Concurrent callers share one request: a refresh token is single use, and
 * presenting it twice would revoke the whole family.
 */
export function refreshSession() {
  refreshing ??= doRefresh().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/*
 * One API call. Resolves the decoded JSON (null for 204), or rejects with an
 * ApiError. On 401 it renews the token once and retries; when that fails the
 * session is cleared and onSessionLost's callback runs.
 */
export async function request(method, path, { body, query, auth = true, raw = null } = {}) {
  const url = buildUrl(path, query);
  const used = accessToken;
  let res = await send(method, url, body, auth, raw);
  if (res.status === 401 && auth) {
    /* another request may already have renewed the token */
    const renewed = accessToken !== null && accessToken !== used ? true : await refreshSession();
    if (renewed) res = await send(method, url, body, auth, raw);
    if (!renewed || res.status === 401) {
      const err = toError(res, await readJson(res));
      clearSession();
      sessionLost(err);
      throw err;
    }
  }
  return parse(res);
}

export const get = (path, query) => request('GET', path, { query });
export const post = (path, body) => request('POST', path, { body });
export const patch = (path, body) => request('PATCH', path, { body });
export const put = (path, body) => request('PUT', path, { body });
export const del = (path, query) => request('DELETE', path, { query });
/* A POST whose body is sent as is (a string or Blob) with this Content-Type, e.g. text/csv. */
export const postRaw = (path, body, type, query) => request('POST', path, { raw: { body, type }, query });

/* POST /api/auth/login. Resolves the user; rejects with invalid_credentials etc. */
export async function login(email, password) {
  const data = await request('POST', '/api/auth/login', { body: { email, password }, auth: false });
  setActingBusiness(null);
  setTokens(data);
  return data.user;
}

/* POST /api/auth/logout (revokes every token of the user), then forget the session. */
export async function logout() {
  try {
    if (hasSession()) await request('POST', '/api/auth/logout');
  } finally {
    clearSession();
  }
}
