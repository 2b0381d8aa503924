/* login_nav.test.mjs - sign in, and the navigation shows only the pages the user may open. */
import assert from 'node:assert/strict';

async function navLabels(page) {
  await page.locator('#nav-list a').first().waitFor();
  return page.locator('#nav-list a').allTextContents();
}

export async function run(t) {
  const { page, users } = t;

  await t.step('the owner signs in and sees outbound, flows and settings', async () => {
    await t.login(users.owner.email, users.owner.password);
    await page.locator('#whoami .who').waitFor();
    const nav = await navLabels(page);
    for (const label of ['Outbound calls', 'Flows', 'Settings']) {
      assert.ok(nav.includes(label), `nav has "${label}" (nav: ${nav.join(', ')})`);
    }
    await t.shot('home');
  });

  await t.step('the home view reloads without asking for the password again', async () => {
    await page.reload();
    await page.locator('#app-header').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#main h1').first().textContent(), 'Overview');
  });

  await t.step('an agent does not see settings', async () => {
    await t.login(users.agent.email, users.agent.password);
    const nav = await navLabels(page);
    assert.ok(!nav.includes('Settings'), `no Settings for an agent (nav: ${nav.join(', ')})`);
    assert.ok(nav.includes('Flows'), `an agent reads flows (nav: ${nav.join(', ')})`);
    await page.goto(`${t.base}/#/settings`);
    await page.waitForFunction(() => window.location.hash !== '#/settings');
    await t.shot('home-agent');
  });

  await t.step('a business without whatsapp_flows has no flows navigation', async () => {
    await t.login(users.noFlowsOwner.email, users.noFlowsOwner.password);
    const nav = await navLabels(page);
    assert.ok(!nav.includes('Flows'), `no Flows (nav: ${nav.join(', ')})`);
    assert.ok(nav.includes('Settings'), `the owner still has Settings (nav: ${nav.join(', ')})`);
    await page.goto(`${t.base}/#/flows`);
    await page.waitForFunction(() => window.location.hash !== '#/flows');
    await t.shot('home-no-flows');
  });

  await t.step('signing out shows the login form', async () => {
    await page.locator('#logout').click();
    await page.locator('input[name="email"]').waitFor({ state: 'visible' });
    assert.ok(await page.locator('#app-header').isHidden());
  });
}
