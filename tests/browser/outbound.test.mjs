/*
 * outbound.test.mjs - the Outbound calls view (web/views/outbound.js): import a
 * CSV with one bad row (its error is shown), start a run from the selected
 * leads and watch it reach "completed" with the sandbox carrier, then start a
 * second, longer run from its lead list and force-cancel it through the
 * confirmation dialog. Also checks the view at 390 px wide.
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function phones(n) {
  /* distinct +1 415 555 xxxx numbers (fresh business per runner run, random anyway) */
  const base = randomInt(1000, 9000 - n);
  return Array.from({ length: n }, (_, i) => `+1415555${String(base + i).padStart(4, '0')}`);
}

function csvFile(name, text) {
  const dir = mkdtempSync(join(tmpdir(), 'dialflow-csv-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

export async function run(t) {
  const { page } = t;
  const owner = t.users.owner;
  const runStatus = page.getByRole('status', { name: 'Run status' });

  await t.step('owner opens Outbound calls from the navigation', async () => {
    await t.login(owner.email, owner.password);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Outbound calls' }).click();
    await page.getByRole('heading', { level: 1, name: 'Outbound calls' }).waitFor();
  });

  const first = phones(3);
  await t.step('a CSV import shows a preview, then the result and the bad row\'s error', async () => {
    const file = csvFile('first-leads.csv',
      `phone,name,email\n${first[0]},Ada Lovelace,ada@example.com\n${first[1]},"Grace, Hopper",\n12,Bad Row,\n${first[2]},Alan Turing,\n`);
    await page.getByLabel('CSV file').setInputFiles(file);
    await page.getByRole('table', { name: /^Preview of first-leads\.csv/ }).waitFor();
    const preview = await page.getByRole('table', { name: /^Preview of/ }).innerText();
    if (!preview.includes('Grace, Hopper')) throw new Error(`the preview misses a quoted cell: ${preview}`);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.getByText('Imported 3 new leads, 0 duplicates skipped, 1 row with errors.').waitFor();
    const errors = page.getByRole('table', { name: 'Rows with errors' });
    await errors.waitFor();
    const text = await errors.innerText();
    if (!/\b3\b/.test(text) || !/phone/i.test(text)) throw new Error(`the error row is not shown as expected: ${text}`);
    await page.getByRole('table', { name: 'Leads', exact: true }).getByText('Alan Turing').waitFor();
    await t.shot('outbound-import');
  });

  await t.step('a run of the selected leads reaches completed', async () => {
    await page.getByLabel('Select all leads on this page').check();
    await page.getByText('Selected leads (3)').waitFor();
    await page.getByLabel('Selected leads (3)').check();
    await page.getByLabel('Concurrency').fill('3');
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.getByText(/Run #\d+ started with 3 calls\./).waitFor();
    await page.getByRole('progressbar', { name: 'Run progress' }).waitFor();
    await page.getByText(/ \/ 3 completed/).waitFor();
    await runStatus.filter({ hasText: /^completed$/ }).waitFor({ timeout: 90000 });
    const progress = await page.getByRole('progressbar', { name: 'Run progress' }).evaluate((p) => [p.value, p.max]);
    if (progress[0] !== progress[1]) throw new Error(`the finished run's progress is ${progress[0]} / ${progress[1]}`);
    await page.getByRole('table', { name: 'Runs', exact: true }).getByText('completed').first().waitFor();
    await t.shot('outbound');
  });

  await t.step('the jobs of a run and the call log are listed', async () => {
    await page.getByRole('button', { name: /^Jobs of run #\d+$/ }).first().click();
    const jobs = page.getByRole('table', { name: /^Jobs of run #\d+$/ });
    await jobs.waitFor();
    const rows = await jobs.locator('tbody tr').count();
    if (rows !== 3) throw new Error(`expected 3 jobs, saw ${rows}`);
    await page.getByRole('button', { name: 'Refresh call log' }).click();
    await page.getByRole('table', { name: 'Call log', exact: true }).waitFor();
  });

  await t.step('a second run is force-cancelled through the confirmation dialog', async () => {
    const more = phones(40);
    const file = csvFile('second-leads.csv', `phone,name\n${more.map((p, i) => `${p},Second ${i + 1}`).join('\n')}\n`);
    await page.getByLabel('CSV file').setInputFiles(file);
    await page.getByLabel('List name').fill(`Second ${Date.now()}`);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.getByText('Imported 40 new leads, 0 duplicates skipped, 0 rows with errors.').waitFor();
    /* the import selects its list for the run */
    await page.getByLabel('Lead list').check();
    await page.getByLabel('Concurrency').fill('1');
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.getByText(/Run #\d+ started with 40 calls\./).waitFor();

    /* Cancel run → Keep running leaves the run alone */
    await page.getByRole('button', { name: 'Cancel run' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Keep running' }).click();
    await dialog.waitFor({ state: 'hidden' });

    await page.getByRole('button', { name: 'Force-cancel' }).click();
    await dialog.waitFor();
    if (!/Force-cancel run #\d+\?/.test(await dialog.innerText())) throw new Error('the dialog does not name the run');
    await t.shot('outbound-confirm');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await runStatus.filter({ hasText: /^cancelled$/ }).waitFor({ timeout: 30000 });
    await page.getByText(/was force-cancelled/).waitFor();
    if (await page.getByRole('button', { name: 'Force-cancel' }).isVisible()) throw new Error('Force-cancel still offered for a cancelled run');
  });

  await t.step('the view is usable at 390 px wide', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('heading', { level: 1, name: 'Outbound calls' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`the page scrolls sideways by ${overflow} px at 390 px`);
    await t.shot('outbound-390');
    await page.setViewportSize({ width: 1280, height: 900 });
  });
}
