/*
 * inbox.test.mjs - the Inbox view (web/views/inbox.js) and the Settings view
 * (web/views/settings.js). A contact needing a human is seeded with t.sql (no
 * API creates a handover); the owner opens it, sees the conversation with
 * each message's sender, sends a reply, resolves it and sees it leave the
 * inbox. Then the WhatsApp account form: secrets write-only, "set"/"not set".
 */
import { randomInt } from 'node:crypto';

export async function run(t) {
  const { page } = t;
  const owner = t.users.owner;
  const biz = t.businesses.full;
  const waId = `4479${randomInt(10000000, 99999999)}`;
  const name = `Inbox Tester ${waId.slice(-4)}`;

  await t.step('seed a contact waiting for a human (SQL fixture)', async () => {
    const [[id]] = await t.sql(
      `INSERT INTO contacts (business_id, wa_id, name, needs_human, handover_requested_at, handover_reason, last_seen)
       VALUES ($1::bigint, $2, $3, true, now(), 'step', now()) RETURNING id`, [biz, waId, name]);
    await t.sql(
      `INSERT INTO messages (business_id, contact_id, direction, wamid, type, text, status, sender, created_at)
       VALUES ($1::bigint, $2::bigint, 'in', $3, 'text', 'hello, I need help', 'received', NULL, now() - interval '2 minutes'),
              ($1::bigint, $2::bigint, 'out', NULL, 'text', 'Connecting you with a person…', 'sent', 'bot', now() - interval '1 minute')`,
      [biz, id, `wamid.browser.${waId}`]);
  });

  await t.step('the inbox lists the contact and opens the conversation', async () => {
    await t.login(owner.email, owner.password);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Inbox' }).click();
    await page.getByRole('heading', { level: 1, name: 'Inbox' }).waitFor();
    await page.getByRole('button', { name: `Open ${name}` }).click();
    await page.getByRole('heading', { name: `Conversation with ${name}` }).waitFor();
    const msgs = page.getByRole('list', { name: 'Messages' });
    await msgs.getByText('hello, I need help').waitFor();
    const text = await msgs.innerText();
    if (!(text.indexOf('Contact') < text.indexOf('Bot'))) throw new Error(`senders or order wrong: ${text}`);
  });

  await t.step('an agent reply is queued and shown', async () => {
    await page.getByLabel('Reply', { exact: true }).fill('Hi, this is a person. How can I help?');
    await page.getByRole('button', { name: 'Send reply' }).click();
    await page.getByText('Reply queued.').waitFor();
    const msgs = page.getByRole('list', { name: 'Messages' });
    await msgs.getByText('Hi, this is a person. How can I help?').waitFor();
    const last = await msgs.locator('li').last().innerText();
    if (!last.startsWith('Agent')) throw new Error(`the reply is not from the agent: ${last}`);
    await t.shot('inbox');
  });

  await t.step('resolve hands the contact back to the bot and it leaves the inbox', async () => {
    await page.getByRole('button', { name: 'Resolve' }).click();
    await page.getByText(`${name} was handed back to the bot.`).waitFor();
    await page.getByRole('button', { name: `Open ${name}` }).waitFor({ state: 'detached' });
    const [[needs]] = await t.sql('SELECT needs_human FROM contacts WHERE business_id = $1::bigint AND wa_id = $2', [biz, waId]);
    if (needs !== 'f') throw new Error(`needs_human is ${needs} after resolve`);
  });

  await t.step('settings: the WhatsApp account form keeps secrets write-only', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
    const suffix = String(randomInt(100000, 999999));
    await page.getByLabel('Phone number ID').fill(`1099${suffix}`);
    await page.getByLabel('WhatsApp Business Account ID').fill(`2099${suffix}`);
    await page.getByLabel('Access token').fill(`EAAtoken${suffix}`);
    await page.getByLabel('App secret').fill(`appsecret${suffix}`);
    await page.getByLabel('Verify token').fill(`verify-${suffix}-token`);
    await page.getByRole('button', { name: 'Save WhatsApp settings' }).click();
    await page.getByText('WhatsApp settings saved.').waitFor();
    if (await page.getByLabel('Access token').inputValue() !== '') throw new Error('a secret was shown after saving');
    const state = await page.locator('.secret-state').innerText();
    if (/not set/.test(state)) throw new Error(`a secret shows "not set" after saving: ${state}`);
    /* saving again with the secrets left empty keeps them */
    await page.getByLabel('WhatsApp Business Account ID').fill(`3099${suffix}`);
    await page.getByRole('button', { name: 'Save WhatsApp settings' }).click();
    await page.getByText('WhatsApp settings saved.').waitFor();
    if (/not set/.test(await page.locator('.secret-state').innerText())) throw new Error('an empty secret field cleared a secret');
    await t.shot('settings');
  });

  await t.step('an agent sees the inbox but not the settings', async () => {
    /* sign out first: t.login's storage clearing can race the app's session refresh */
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('input[name="email"]').waitFor();
    await t.login(t.users.agent.email, t.users.agent.password);
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Inbox' }).waitFor();
    if (await nav.getByRole('link', { name: 'Settings', exact: true }).count()) throw new Error('an agent is offered Settings');
    await page.goto(`${t.base}/#/settings`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  });
}
