// Sign-in through the OpenID Provider's own pages in headless Chromium, against a running server:
//   node oidc_story.mjs BASE_URL PROVIDER_HOST
// The sign-in page offers "Sign in with PROVIDER_HOST"; the provider's login and consent forms are
// filled in; the provider's return (a cross-site navigation) lands on the continuation page, which
// moves on to /ui signed in as alice (the SameSite=Strict session cookie is sent); sign-out goes to
// the provider's end-session page, and confirming it comes back to /ui/signin. No CSP violation on
// the way. Exits non-zero, naming the failed step, on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, providerHost] = process.argv.slice(2);
if (!providerHost) {
  console.error('usage: node oidc_story.mjs BASE_URL PROVIDER_HOST');
  process.exit(2);
}
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const check = (condition, what) => { if (!condition) throw new Error(`failed: ${what}`); };

const profile = mkdtempSync(join(tmpdir(), 'roleledger-chromium-oidc-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args,
});
let failed = false;
try {
  const page = context.pages()[0] ?? await context.newPage();
  const violations = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  await page.goto(`${base}/ui`);
  check(page.url().endsWith('/ui/signin'), `signed out, /ui sends to the sign-in page (${page.url()})`);
  const button = page.locator('#oidc-signin');
  check((await button.textContent()).includes(`Sign in with ${providerHost}`), 'the sign-in page names the provider');
  await button.click();
  await page.waitForURL((url) => url.host === providerHost);
  await page.fill('input[name="login"]', 'alice');
  await page.fill('input[name="password"]', 'anything');
  await page.click('button[type="submit"]');
  // The consent page (its only button continues).
  await page.waitForSelector('button[type="submit"]');
  if (new URL(page.url()).host === providerHost) await page.click('button[type="submit"]');
  await page.waitForURL((url) => url.pathname === '/ui' && url.host !== providerHost, { timeout: 15000 });
  check((await page.locator('.who').textContent()).trim() === 'alice', 'signed in as alice on /ui');
  await page.click('form.signout button[type="submit"]');
  await page.waitForURL((url) => url.host === providerHost, { timeout: 15000 });
  await page.click('button[name="logout"]');
  await page.waitForURL((url) => url.pathname === '/ui/signin' && url.host !== providerHost, { timeout: 15000 });
  await page.goto(`${base}/ui`);
  check(page.url().endsWith('/ui/signin'), 'signed out here too');
  check(violations.length === 0, `no CSP violation: ${violations.join(' | ')}`);
  console.log('the OpenID Connect story passed');
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
