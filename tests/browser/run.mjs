#!/usr/bin/env node
/*
 * tests/browser/run.mjs - the browser tests of the admin UI (web/): headless
 * Debian chromium driven by playwright-core, against a running stack. Run by
 * the `browser` tier of ./dev test (tests/harness/tiers.sh), which starts the
 * e2e stack, exports the environment below and counts the TAP lines.
 *
 * Environment:
 *   DIALFLOW_TEST_BASE_URL       https://localhost:PORT (the stack's nginx; self-signed TLS is accepted)
 *   DIALFLOW_TEST_DATABASE_URL   the database, as its owner (fixtures and t.sql)
 *   DIALFLOW_ADMIN_BIN           dialflow-admin, to create the fixture businesses and users
 *   DIALFLOW_CHROMIUM            the browser binary (default: /usr/lib/chromium/chromium, else chromium)
 *   DIALFLOW_BROWSER_TIMEOUT_MS  the time limit of one test file (default 180000)
 *   DIALFLOW_BROWSER_ONLY        run only the test files whose name contains this
 *   NODE_TLS_REJECT_UNAUTHORIZED=0 for t.api (set by the tier for this process only)
 *
 * Every tests/browser/*.test.mjs runs, in name order, each in a fresh browser
 * context (own storage), through its `export async function run(t)`, where t is:
 *
 *   t.page                    a fresh playwright Page (default timeout 15 s), at about:blank
 *   t.base                    the base URL, no trailing slash
 *   t.login(email, password)  open the UI, sign out a resumed session (the Sign out button),
 *                             sign in through the login view and wait for the header to show
 *   t.shot(name)              full-page screenshot to tests/browser/screenshots/<name>.png
 *   t.api(method, path, body, token, headers)
 *                             fetch base+path (JSON body when given, Bearer token when given);
 *                             resolves {status, body} (body: parsed JSON, or text, or null)
 *   t.token(email, password)  POST /api/auth/login and resolve the access token
 *   t.sql(text, params)       run SQL through psql as the database owner, for fixtures no API
 *                             can create; $1..$N in text are bound to params (as quoted
 *                             literals); resolves the rows as arrays of strings
 *   t.users                   {owner, admin, agent, sysadmin, noFlowsOwner}: {email, password}.
 *                             owner/admin/agent belong to businesses.full; noFlowsOwner to
 *                             businesses.noFlows; sysadmin is a system_admin (no business)
 *   t.businesses              {full: id (every page enabled), noFlows: id (all pages but
 *                             whatsapp_flows)}
 *   t.step(name, fn)          run one named check: prints `ok N - file: name` or `not ok`;
 *                             a failed step ends the file (the error is rethrown)
 *   t.log(...)                a TAP diagnostic line (# ...)
 *
 * A file whose run(t) throws outside a step, or exceeds the time limit, gets a
 * `not ok` line; a file with no steps gets one line for the whole file.
 * Uncaught errors in the page (pageerror) fail the file too.
 * Output is TAP; the exit status is 1 when anything failed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(HERE, 'screenshots');
const BASE = (process.env.DIALFLOW_TEST_BASE_URL ?? '').replace(/\/+$/, '');
const DB_URL = process.env.DIALFLOW_TEST_DATABASE_URL ?? '';
const ADMIN_BIN = process.env.DIALFLOW_ADMIN_BIN ?? '';
const FILE_TIMEOUT_MS = Number(process.env.DIALFLOW_BROWSER_TIMEOUT_MS ?? 180000);
const ONLY = process.env.DIALFLOW_BROWSER_ONLY ?? '';

let testNo = 0;
let failed = 0;

function tapOk(ok, name, err) {
  testNo += 1;
  if (!ok) failed += 1;
  console.log(`${ok ? 'ok' : 'not ok'} ${testNo} - ${name}`);
  if (err) {
    for (const line of String(err.stack ?? err).split('\n').slice(0, 12)) console.log(`#   ${line}`);
  }
}

function diag(...args) {
  console.log(`# ${args.join(' ')}`);
}

function bail(msg) {
  console.log('1..1');
  console.log(`not ok 1 - setup: ${msg}`);
  process.exit(1);
}

function chromiumPath() {
  if (process.env.DIALFLOW_CHROMIUM) return process.env.DIALFLOW_CHROMIUM;
  for (const p of ['/usr/lib/chromium/chromium', '/usr/bin/chromium']) if (existsSync(p)) return p;
  return 'chromium';
}

/* ---- fixtures: two businesses and their users, through dialflow-admin ---- */

function admin(args, input) {
  const out = execFileSync(ADMIN_BIN, args, {
    input: input ?? '',
    env: { ...process.env, DIALFLOW_DATABASE_URL: DB_URL, ASAN_OPTIONS: 'detect_leaks=0' },
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 30000,
  });
  return out.trim() ? JSON.parse(out.trim().split('\n').pop()) : null;
}

function password() {
  return `Br0wser-${randomBytes(12).toString('base64url')}`;
}

function fixtures() {
  const sfx = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const biz = (name, pages) => {
    const b = admin(['business', 'create', '--name', name]);
    admin(['pages', 'set', '--business', String(b.id), pages]);
    return b.id;
  };
  const businesses = {
    full: biz(`Browser Full ${sfx}`, 'calls_outbound,whatsapp_flows,contacts,settings'),
    noFlows: biz(`Browser NoFlows ${sfx}`, 'calls_outbound,contacts,settings'),
  };
  const user = (key, role, business) => {
    const u = { email: `${key.toLowerCase()}-${sfx}@browser.test`, password: password() };
    const args = ['user', 'create', '--email', u.email, '--name', `Browser ${key}`, '--role', role, '--password-stdin'];
    if (business) args.push('--business', String(business));
    admin(args, `${u.password}\n`);
    return u;
  };
  const users = {
    owner: user('Owner', 'owner', businesses.full),
    admin: user('Admin', 'admin', businesses.full),
    agent: user('Agent', 'agent', businesses.full),
    sysadmin: user('Sysadmin', 'system_admin', null),
    noFlowsOwner: user('NoFlowsOwner', 'owner', businesses.noFlows),
  };
  return { users, businesses };
}

/* ---- the helpers of t ---- */

async function api(method, path, body, token, headers = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined && body !== null) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: h,
    body: body === undefined || body === null ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30000),
  });
  const text = await res.text();
  let data = text || null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: the text */
  }
  return { status: res.status, body: data };
}

async function token(email, pw) {
  const r = await api('POST', '/api/auth/login', { email, password: pw });
  if (r.status !== 200) throw new Error(`login ${email}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.access_token;
}

function sql(text, params = []) {
  const vars = [];
  params.forEach((p, i) => vars.push('-v', `p${i + 1}=${p === null ? '' : String(p)}`));
  const q = text.replace(/\$(\d+)/g, (_, n) => `:'p${n}'`);
  return new Promise((resolve, reject) => {
    execFile('psql', ['-X', '-q', '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', ...vars, '-d', DB_URL],
      { timeout: 30000, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new Error(`psql: ${stderr || err.message}`));
        else resolve(stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')));
      }).stdin.end(`${q}\n`);
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]);
}

async function runFile(browser, file, fx) {
  const label = file.replace(/\.test\.mjs$/, '');
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.setDefaultNavigationTimeout(30000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e));
  page.on('console', (m) => {
    if (m.type() === 'error') diag(`${label}: console error: ${m.text()}`);
  });
  let steps = 0;
  let stepFailed = false;
  const t = {
    page,
    base: BASE,
    users: fx.users,
    businesses: fx.businesses,
    api,
    token,
    sql,
    log: (...a) => diag(`${label}:`, ...a),
    async login(email, pw) {
      const emailBox = page.locator('input[name="email"]');
      const header = page.locator('#app-header');
      await page.goto(`${BASE}/`);
      /* the app resumes a session of this context by itself: sign it out first */
      await page.locator('input[name="email"], #app-header:not([hidden])').first().waitFor({ state: 'visible' });
      if (await header.isVisible()) {
        await page.locator('#logout').click();
      }
      await emailBox.waitFor({ state: 'visible' });
      await page.locator('input[name="email"]').fill(email);
      await page.locator('input[name="password"]').fill(pw);
      await page.locator('form.login-form button[type="submit"]').click();
      await page.locator('#app-header').waitFor({ state: 'visible' });
      await page.locator('#main h1').first().waitFor({ state: 'visible' });
    },
    async shot(name) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    },
    async step(name, fn) {
      steps += 1;
      try {
        await fn();
        tapOk(true, `${label}: ${name}`);
      } catch (err) {
        stepFailed = true;
        tapOk(false, `${label}: ${name}`, err);
        try {
          await t.shot(`FAILED-${label}-${steps}`);
        } catch {
          /* the page may be gone */
        }
        throw err;
      }
    },
  };
  try {
    const mod = await import(pathToFileURL(join(HERE, file)).href);
    if (typeof mod.run !== 'function') throw new Error('no `export async function run(t)`');
    await withTimeout(mod.run(t), FILE_TIMEOUT_MS, label);
    if (steps === 0) tapOk(true, label);
  } catch (err) {
    if (!stepFailed) tapOk(false, `${label}: run`, err);
  }
  if (pageErrors.length) {
    tapOk(false, `${label}: no uncaught errors in the page`, pageErrors.map((e) => e.stack ?? e.message).join('\n'));
  }
  await withTimeout(context.close(), 15000, 'context.close').catch(() => {});
}

async function main() {
  if (!BASE) bail('DIALFLOW_TEST_BASE_URL is not set');
  if (!DB_URL) bail('DIALFLOW_TEST_DATABASE_URL is not set');
  if (!ADMIN_BIN) bail('DIALFLOW_ADMIN_BIN is not set');
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (err) {
    bail(`playwright-core is not installed (npm ci in tests/browser): ${err.message}`);
  }
  const files = readdirSync(HERE).filter((f) => f.endsWith('.test.mjs') && f.includes(ONLY)).sort();
  if (!files.length) bail('no tests/browser/*.test.mjs');
  let fx;
  try {
    fx = fixtures();
  } catch (err) {
    bail(`fixtures (dialflow-admin): ${err.stderr ?? err.message}`);
  }
  const exe = chromiumPath();
  const args = ['--disable-dev-shm-usage', '--disable-gpu'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  let browser;
  try {
    browser = await withTimeout(chromium.launch({ executablePath: exe, headless: true, args }), 60000, 'chromium.launch');
  } catch (err) {
    bail(`cannot launch ${exe}: ${err.message}`);
  }
  diag(`chromium ${browser.version()} (${exe}), ${files.length} test files, base ${BASE}`);
  for (const f of files) {
    await runFile(browser, f, fx);
  }
  await withTimeout(browser.close(), 20000, 'browser.close').catch(() => {});
  console.log(`1..${testNo}`);
  diag(`${testNo - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.log(`not ok ${testNo + 1} - runner: ${err.message}`);
  process.exit(1);
});
