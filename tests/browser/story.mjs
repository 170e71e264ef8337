// The web pages' story in headless Chromium, against a running server:
//   node story.mjs BASE_URL REQUESTER_TOKEN MANAGER_TOKEN OUTSIDER_TOKEN AUDITOR_TOKEN ADMIN_TOKEN
// A requester asks for site-administrator on SITE_A (on a phone-width screen), the site's manager
// approves it on /ui/decide by ticking it and deciding the ticked ones, the requester sees the grant
// on /ui, the auditor finds it in the log and in the grants as of now and verifies the log, an
// admin sees the undeliverable mail and creates and revokes an API token, and a manager of another
// site can neither see nor decide the request, even by typing its address. A screenshot of each
// page goes to screenshots/ (next to this file).
// Exits non-zero, naming the failed step, on any failure.
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [base, requesterToken, managerToken, outsiderToken, auditorToken, adminToken] = process.argv.slice(2);
if (!adminToken) {
  console.error('usage: node story.mjs BASE_URL REQUESTER_TOKEN MANAGER_TOKEN OUTSIDER_TOKEN AUDITOR_TOKEN ADMIN_TOKEN');
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
  await card.getByLabel('Tick to decide with others').check();
  await manager.page.getByLabel('One comment for all of them').fill('Welcome aboard');
  await shot(manager.page, '05-decide');
  await manager.page.getByRole('button', { name: 'Approve the ticked' }).click();
  await manager.page.waitForURL(`${base}/ui/decide`);
  check((await manager.page.locator('#outcome-title').textContent()).trim() === '1 approved', 'the batch reports one approval');
  check(await manager.page.locator('article.request').count() === 0, 'the queue is empty after approving');
  check((await manager.page.locator('#deciding').textContent()).trim() === '0', 'the header counts nothing left');
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

  await outsider.page.goto(`${base}/ui/decide`);
  check(await outsider.page.locator('article.request').count() === 0, 'nothing for the outsider to decide');
  const unknown = await outsider.page.goto(`${base}/ui/no-such-page`);
  check(unknown.status() === 404, `an unknown page answers 404 (got ${unknown.status()})`);
  await shot(outsider.page, '09-not-found');

  const auditor = await launch(auditorToken, { width: 1280, height: 900 });
  await auditor.page.getByRole('link', { name: 'Audit' }).click();
  await auditor.page.getByLabel('Event type').fill('RoleGranted');
  await auditor.page.getByLabel('Actor (user id)').fill('manager');
  await auditor.page.getByRole('button', { name: 'Show events' }).click();
  await auditor.page.waitForURL(/\/ui\/audit\?/);
  const found = await auditor.page.locator('#events').textContent();
  check(found.includes('RoleGranted') && found.includes('site-administrator') && found.includes('requester'), 'the auditor finds the grant in the log');
  await shot(auditor.page, '10-audit-log');
  // A minute ahead, in UTC as the field says: the grant made a moment ago is valid then.
  const soon = new Date(Date.now() + 60_000).toISOString().slice(0, 19);
  await auditor.page.getByLabel('Moment (UTC)').fill(soon);
  await auditor.page.getByRole('button', { name: 'Show the grants then' }).click();
  const asOf = await auditor.page.locator('#grants-as-of').textContent();
  check(asOf.includes('requester') && asOf.includes('site-administrator'), 'the grant is among the grants as of now');
  await shot(auditor.page, '11-audit-as-of');
  await auditor.page.getByRole('button', { name: 'Verify the log now' }).click();
  check((await auditor.page.locator('#verified').textContent()).includes('The log is intact'), 'the log verifies');
  await shot(auditor.page, '12-audit-verified');

  const admin = await launch(adminToken, { width: 1280, height: 900 });
  await admin.page.getByRole('link', { name: 'Administration' }).click();
  check(await admin.page.locator('#no-dead-mail, #dead-mail').count() === 1, 'the undeliverable mail is listed');
  await admin.page.getByLabel('For user (empty: yourself)').fill('requester');
  await admin.page.getByLabel('Name', { exact: true }).fill('story-ci');
  await admin.page.getByRole('button', { name: 'Create the token' }).click();
  const secret = await admin.page.locator('#new-token').inputValue();
  check(secret.startsWith('rl_'), 'the new token\'s secret is shown');
  check(!admin.page.url().includes(secret), 'the secret is not in the address');
  await shot(admin.page, '13-admin-token-created');
  await admin.page.getByRole('button', { name: 'Revoke the token story-ci of requester' }).click();
  await admin.page.waitForURL(`${base}/ui/admin`);
  const row = admin.page.locator('#tokens tr').filter({ hasText: 'story-ci' });
  check((await row.textContent()).includes('revoked'), 'the token is revoked');
  check(!(await admin.page.content()).includes(secret), 'the secret is never shown again');
  await shot(admin.page, '14-admin');
  await admin.page.setViewportSize({ width: 375, height: 812 });
  await shot(admin.page, '15-admin-phone');

  for (const who of [requester, manager, outsider, auditor, admin]) {
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
