/* flows.test.mjs - the flows page as an admin: validation problems at their path, save, graph, simulator, activate. */
import assert from 'node:assert/strict';

function definition(name, { broken }) {
  const ask = {
    name: 'ask_name',
    type: 'question',
    config: {
      message_config: { message_type: 'text', text: { body: 'What is your name?' } },
      ...(broken ? {} : { reply_config: { save_to_variable: 'visitor', expected_type: 'text' } }),
    },
    transitions: [{ to_step: 'bye', condition_config: { type: 'always_true' } }],
  };
  return {
    name,
    trigger_keywords: ['browsertest'],
    steps: [
      {
        name: 'welcome',
        type: 'send_message',
        is_entry_point: true,
        config: {
          message_type: 'interactive',
          interactive: {
            type: 'button',
            body: { text: 'Welcome to the browser test' },
            action: { buttons: [{ type: 'reply', reply: { id: 'go', title: 'Go' } }] },
          },
        },
        transitions: [{ to_step: 'ask_name', condition_config: { type: 'always_true' } }],
      },
      ask,
      {
        name: 'bye',
        type: 'end_flow',
        config: { message_config: { message_type: 'text', text: { body: 'Thanks {{ visitor }}, bye.' } } },
      },
    ],
  };
}

export async function run(t) {
  const { page, users } = t;
  const name = `Browser flow ${Date.now()}`;
  const editorBox = page.locator('textarea[name="definition"]');
  let flowId = null;

  await t.step('an admin opens the flows page', async () => {
    await t.login(users.admin.email, users.admin.password);
    await page.locator('#nav-list a', { hasText: 'Flows' }).click();
    await page.locator('#main h1', { hasText: 'WhatsApp flows' }).waitFor();
    await page.locator('#main .list:not([aria-busy])').waitFor();
  });

  await t.step('a flow with an error shows the problem with its path', async () => {
    await page.getByRole('button', { name: 'New flow' }).click();
    await page.getByLabel('Flow definition').fill(JSON.stringify(definition(name, { broken: true }), null, 2));
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const problem = page.locator('.flow-problems li', { hasText: 'steps[1].config' }).first();
    await problem.waitFor();
    const text = await page.locator('.flow-problems').textContent();
    assert.match(text, /steps\[1\]\.config(\.reply_config)?/, text);
    assert.equal(await editorBox.getAttribute('aria-invalid'), 'true');
    /* the step the path names is highlighted in the graph */
    await page.locator('.flow-graph-svg g.graph-step.problem[data-step="ask_name"]').waitFor();
    await t.shot('flow-editor-problems');
  });

  await t.step('the fixed flow saves', async () => {
    await editorBox.fill(JSON.stringify(definition(name, { broken: false }), null, 2));
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.locator('.flow-editor .notice.success', { hasText: 'Saved' }).waitFor();
    assert.equal(await page.locator('.flow-problems li').count(), 0);
    await page.locator('.flow-editor h2', { hasText: `Flow: ${name}` }).waitFor();
    const tok = await t.token(users.admin.email, users.admin.password);
    const list = await t.api('GET', '/api/flows?page_size=200', null, tok);
    assert.equal(list.status, 200);
    const f = list.body.items.find((x) => x.name === name);
    assert.ok(f, 'the flow is listed by the API');
    flowId = f.id;
  });

  await t.step('the SVG graph shows the steps and transitions', async () => {
    const steps = page.locator('.flow-graph-svg g.graph-step');
    assert.equal(await steps.count(), 3);
    for (const s of ['welcome', 'ask_name', 'bye']) {
      await page.locator(`.flow-graph-svg g.graph-step[data-step="${s}"]`).waitFor();
    }
    assert.equal(await page.locator('.flow-graph-svg g.graph-edge').count(), 2);
    assert.match(await page.locator('.flow-graph-svg').textContent(), /always_true/);
    assert.equal(await page.locator('.flow-graph-svg g.graph-step.problem').count(), 0);
    await t.shot('flow-editor');
  });

  await t.step('the simulator answers a message', async () => {
    const sim = page.getByRole('region', { name: 'Simulator' });
    await sim.getByLabel('Message').fill('browsertest');
    await sim.getByRole('button', { name: 'Send' }).click();
    await sim.locator('.bubble.bot', { hasText: 'What is your name?' }).waitFor();
    await sim.locator('.bubble.bot', { hasText: 'Welcome to the browser test' }).waitFor();
    assert.ok(await sim.locator('.bubble.user', { hasText: 'browsertest' }).count() === 1);
    await sim.getByLabel('Message').fill('Ada');
    await sim.getByRole('button', { name: 'Send' }).click();
    await sim.locator('.bubble.bot', { hasText: 'Thanks Ada, bye.' }).waitFor();
    await sim.locator('.sim-status', { hasText: 'ended' }).waitFor();
    await t.shot('simulator');
  });

  await t.step('activate the flow', async () => {
    await page.getByRole('button', { name: `Activate ${name}` }).click();
    await page.getByRole('button', { name: `Deactivate ${name}` }).waitFor();
    const tok = await t.token(users.admin.email, users.admin.password);
    const r = await t.api('GET', `/api/flows/${flowId}`, null, tok);
    assert.equal(r.status, 200);
    assert.equal(r.body.flow.is_active, true);
    await t.shot('flows');
  });
}
