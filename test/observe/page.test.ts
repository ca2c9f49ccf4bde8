/**
 * The status page in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core, a
 * fresh profile): it loads with every asset from the agent (no request leaves it), the numbers move as
 * records flow, the plots are drawn, no console errors; with the token, the pause form works without a
 * script and a cross-origin form post is refused. A screenshot is kept as a test artefact in
 * test-artefacts/ (git-ignored; EDGE_TEST_ARTEFACTS names another directory); its path is printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startMosquitto } from '../../scripts/lib/mosquitto.ts';
import { startReceiver } from '../../agent/receiver/start.ts';
import { x25519 } from '../../agent/keys/x25519.ts';
import { silentLogger } from '../../agent/log.ts';
import { readToken } from '../../agent/observe/token.ts';
import { configPaths } from '../../agent/config/paths.ts';
import { CollectingOutput } from '../helpers/collector.ts';
import { agentYaml, workspace, writeConfig } from '../helpers/setup.ts';
import { startObservedAgent } from '../helpers/observe.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../../scripts/lib/chromium.ts';

interface Dom {
  document: {
    querySelector(s: string): { textContent: string | null; getAttribute(a: string): string | null } | null;
    querySelectorAll(s: string): { length: number };
  };
}

test('the status page in Chromium: loads, numbers move, plots drawn, no console errors, actions with the token only', {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`,
}, async () => {
  const ws = await workspace();
  const broker = await startMosquitto();
  const loaded = writeConfig(
    ws.dir,
    agentYaml(broker.url, {
      sources: '  - { type: synthetic, name: gen, rate: 200, batch: 20 }',
      extra: 'http: { enabled: true, listen: "127.0.0.1:0", history_interval: 1s }\n',
    }),
  );
  const receiver = await startReceiver(x25519, loaded, silentLogger, { output: new CollectingOutput() });
  const o = await startObservedAgent(loaded);
  const profile = mkdtempSync(join(tmpdir(), 'edge-chromium-'));
  const artefacts = process.env.EDGE_TEST_ARTEFACTS ?? join(import.meta.dirname, '..', '..', 'test-artefacts');
  mkdirSync(artefacts, { recursive: true });
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS] });
  const errors: string[] = [];
  const foreign: string[] = [];
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(o.http.url)) foreign.push(r.url());
    });
    await page.goto(`${o.http.url}/`);
    assert.match(await page.title(), /edge-agent gw-test/);
    const committed = async () => Number(await page.textContent('[data-field="source.gen.records"]'));
    const first = await committed();
    // The script refreshes the numbers in place: wait for the next refresh, then for a count that moved.
    // Functions run in the page (not strings: the page's CSP forbids eval). Its document, typed by hand: this
    // file is compiled without the DOM's types.
    const at = (field: string, min: number) =>
      page.waitForFunction(
        ([f, m]) => Number((globalThis as unknown as Dom).document.querySelector(`[data-field="${f}"]`)?.textContent) > Number(m),
        [field, String(min)],
        { timeout: 30_000 },
      );
    await at('source.gen.records', first);
    await at('sent.records', 0);
    await page.waitForFunction(() => (globalThis as unknown as Dom).document.querySelectorAll('#plots canvas').length === 3, undefined, { timeout: 30_000 });
    await page.waitForFunction(() => Number((globalThis as unknown as Dom).document.querySelector('#plots')?.getAttribute('data-points')) >= 3, undefined, {
      timeout: 30_000,
    });
    assert.ok((await committed()) > first, 'the numbers moved');
    assert.equal(await page.locator('form').count(), 0, 'read-only without the token');
    const shot = join(artefacts, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`# screenshot: ${shot}\n`);

    // With the token: the pause form, no script needed (a plain form post and a redirect back).
    const token = readToken(configPaths(loaded).dataDir)!;
    await page.goto(`${o.http.url}/?token=${token}`);
    await page.click('#action-pause');
    await page.waitForSelector('#action-resume', { timeout: 30_000 });
    assert.equal(await page.textContent('[data-field="forwarding"]'), 'paused by an operator');
    assert.equal(o.agent.sender.paused, true);
    await page.click('#action-resume');
    await page.waitForSelector('#action-pause', { timeout: 30_000 });
    assert.equal(o.agent.sender.paused, false);

    // A page of another origin posting the same form with the right token is refused.
    const other = await browser.newPage();
    await other.goto('about:blank');
    const crossStatus = await other.evaluate(
      async ([url, t]) => {
        try {
          const r = await fetch(`${url}/actions/pause`, { method: 'POST', body: new URLSearchParams({ token: t! }), mode: 'no-cors' });
          return r.type;
        } catch (e) {
          return String(e);
        }
      },
      [o.http.url, token],
    );
    assert.ok(crossStatus, 'the cross-origin post went out');
    assert.equal(o.agent.sender.paused, false, 'a cross-origin post did not pause forwarding');
    assert.deepEqual(errors, [], 'no console errors');
    assert.deepEqual(foreign, [], 'every request went to the agent');
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
    await o.stop();
    await receiver.close();
    await broker.stop();
    ws.cleanup();
  }
});
