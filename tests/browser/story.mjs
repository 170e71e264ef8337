// The web pages' story in headless Chromium, against a running server:
//   node story.mjs BASE_URL REQUESTER_TOKEN MANAGER_TOKEN OUTSIDER_TOKEN
// A requester asks for site-administrator on SITE_A, the site's manager approves it on /ui/decide,
// the requester sees the grant on /ui, and a manager of another site cannot see the request, even
// by typing its address. A screenshot of each page goes to screenshots/ (next to this file).
// Exits non-zero, naming the failed step, on any failure.
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [base, requesterToken, managerToken, outsiderToken] = process.argv.slice(2);
if (!outsiderToken) {
  console.error('usage: node story.mjs BASE_URL REQUESTER_TOKEN MANAGER_TOKEN OUTSIDER_TOKEN');
  process.exit(2);
}
const shots = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
mkdirSync(shots, { recursive: true });
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const profiles = [];
const browsers = [];

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** A person in their own Chromium (a fresh --user-data-dir, so their own cookies), signed in
 * with `token` through the sign-in page. */
async function launch(token, viewport) {
  const profile = mkdtempSync(join(tmpdir(), 'roleledger-chromium-'));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args, viewport,
  });
  browsers.push(context);
  const page = context.pages()[0] ?? await context.newPage();
  const violations = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  await page.goto(`${base}/ui`);
  check(page.url().endsWith('/ui/signin'), 'signed out, /ui leads to the sign-in page');
  await shot(page, '01-signin');
  await page.getByLabel('Login token').fill(token);
  await page.getByRole('button', { name: 'Sign in with the token' }).click();
  await page.waitForURL(`${base}/ui`);
  return { page, violations };
}

let failed = false;
try {
  const requester = await launch(requesterToken, { width: 390, height: 844 });
  await shot(requester.page, '02-requester-home');

  await requester.page.getByRole('link', { name: 'Request a role' }).first().click();
  await requester.page.getByLabel('Find a scope').fill('SITE_A');
  await requester.page.getByRole('button', { name: 'Search' }).click();
  await requester.page.getByRole('link', { name: 'SITE_A', exact: true }).click();
  const roles = await requester.page.getByLabel('Role').locator('option').allTextContents();
  check(roles.some((r) => r.includes('site-administrator')), 'a site role is offered');
  check(!roles.some((r) => r.includes('ngi-operations-manager')), 'no NGI role is offered on a site');
  await requester.page.getByLabel('Role').selectOption('site-administrator');
  await requester.page.getByLabel('Reason').fill('I run the batch system');
  await requester.page.getByLabel(/Duration/).fill('30d');
  await shot(requester.page, '03-request-form');
  await requester.page.getByRole('button', { name: 'Send the request' }).click();
  await requester.page.waitForURL(/\/ui\/requests\//);
  const requestUrl = requester.page.url();
  check((await requester.page.locator('#status').textContent()).trim() === 'pending', 'the new request is pending');
  await shot(requester.page, '04-request-page');

  const manager = await launch(managerToken, { width: 1280, height: 900 });
  check((await manager.page.locator('#deciding').textContent()).trim() === '1', 'the header counts one request to decide');
  await manager.page.getByRole('link', { name: /To decide/ }).click();
  const card = manager.page.locator('article.request').filter({ hasText: 'I run the batch system' });
  check(await card.count() === 1, 'the request waits on /ui/decide');
  await card.getByLabel('Comment').fill('Welcome aboard');
  await shot(manager.page, '05-decide');
  await card.getByRole('button', { name: 'Approve' }).click();
  await manager.page.waitForURL(`${base}/ui/decide`);
  check(await manager.page.locator('article.request').count() === 0, 'the queue is empty after approving');
  await shot(manager.page, '06-decided');

  await requester.page.goto(`${base}/ui`);
  const grants = await requester.page.locator('#grants').textContent();
  check(grants.includes('site-administrator') && grants.includes('SITE_A'), 'the requester sees the grant');
  await shot(requester.page, '07-requester-granted');

  const outsider = await launch(outsiderToken, { width: 1280, height: 900 });
  check(!(await outsider.page.content()).includes('I run the batch system'), 'the outsider does not see it');
  const answer = await outsider.page.goto(requestUrl);
  check(answer.status() === 403, `typing the request's address answers 403 (got ${answer.status()})`);
  check(!(await outsider.page.content()).includes('I run the batch system'), 'the 403 page shows nothing of it');
  await shot(outsider.page, '08-outsider-forbidden');

  for (const who of [requester, manager, outsider]) {
    check(who.violations.length === 0, `no Content-Security-Policy violation: ${who.violations.join('; ')}`);
  }
  console.log(`story passed; screenshots in ${shots}`);
} catch (error) {
  failed = true;
  console.error(error.stack ?? String(error));
} finally {
  for (const context of browsers) await context.close();
  for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
