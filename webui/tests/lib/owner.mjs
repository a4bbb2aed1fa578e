// Shared by the owner UI's browser tests (owner_*.test.mjs, one file per page or job):
// each file runs in its own process with its own virtual office (the real agent, dnsd
// and webd in box, Chromium in pc), brought up by useOffice() before its tests, which run
// in order and share it, and removed after them, also after a failure.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Office, skipReason, BOX } from './office.mjs';
import { ready } from './page.mjs';

export { Office, skipReason };

export const URL0 = `https://${BOX}`;
export const PASSWORD = 'kumo-no-ue-2026';
const why = skipReason();
let browser = null;

// Top-level tests (not one suite) so the runner counts each; skipped, with the reason,
// where the office cannot run.
export const test = (name, fn) => nodeTest(name, { skip: why || false }, fn);

// A fresh browser context (cookies of its own) in `locale`; the page keeps its script
// errors in p.__errors for noMissing().
export async function newPage(locale) {
  const c = await browser.newContext({ locale, ignoreHTTPSErrors: true, viewport: { width: 1200, height: 900 } });
  const p = await c.newPage();
  p.on('pageerror', (e) => { p.__errors = (p.__errors || []).concat(String(e)); });
  return { c, p };
}

export async function signIn(p, user, pass) {
  await p.goto(`${URL0}/`);
  await p.waitForSelector('#login-form');
  await p.fill('#username', user);
  await p.fill('#password', pass);
  await p.click('#login-form button[type=submit]');
}

// The owner "boss" made through the first-setup form with the box's one-time code, as an
// owner does it (the sign-in tests check that form itself), and signed in on page p.
async function firstSetup(office, p) {
  const code = /setup code: (\S+)/.exec(await office.ctl('setup-code'))[1];
  // The browser's first page: a change of pc's addresses still in flight aborts it with
  // ERR_NETWORK_CHANGED (office.browser() waits for them to settle; this is the spare).
  for (let i = 0; ; i++) {
    try { await p.goto(`${URL0}/`); break; } catch (e) {
      if (i >= 2 || !/ERR_NETWORK_CHANGED/.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await p.waitForSelector('#setup-form');
  await p.fill('#code', code);
  await p.fill('#username', 'boss');
  await p.fill('#password', PASSWORD);
  await p.fill('#password2', PASSWORD);
  await p.click('#setup-form button[type=submit]');
  await ready(p);
}

// Registers the hooks that bring `office` up before the file's tests and down after them,
// and hands got({ browser, ctx, page }) a Japanese page once up (awaited: a file that needs
// more in its office does it there; node 20 runs a file's before() hooks at the same
// time, so a second hook would not wait for this one). owner: also make the
// owner account "boss" (PASSWORD) and sign page in. ads.test joins the "ads" category
// through an owner rule, so a category switch decides whether pc can resolve it.
export function useOffice(office, got, { owner = true } = {}) {
  before(async () => {
    if (why) return;
    await office.up();
    try {
      await office.startBox();
      const r = await office.agent('POST', '/v1/rules', { pattern: 'ads.test', kind: 'block', category: 'ads' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      browser = await office.browser();
      const { c, p } = await newPage('ja-JP');
      if (owner) await firstSetup(office, p);
      await got({ browser, ctx: c, page: p });
    } catch (e) {
      for (const n of ['agent', 'dnsd', 'webd']) console.error(`# ${n} log:\n${office.log(n)}`);
      throw e;
    }
  });

  after(async () => {
    // Stop the daemons first so a sanitizer build reports leaks into their logs.
    let bad = '';
    if (office.id) {
      for (const n of ['webd', 'agent']) {
        await office.stop(n).catch(() => {});
        const log = office.log(n);
        if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(log)) bad += `# ${n} log:\n${log}\n`;
      }
    }
    await office.down();
    assert.equal(bad, '', 'sanitizer reports in the daemons\' logs');
  });
}

