// The web pages' story in headless Chromium, against a running server:
//   node story.mjs BASE_URL REQUESTER_TOKEN MANAGER_TOKEN OUTSIDER_TOKEN AUDITOR_TOKEN ADMIN_TOKEN MAIL_DIR
// A requester asks for site-administrator on SITE_A (on a phone-width screen), the site's manager
// approves it on /ui/decide by ticking it and deciding the ticked ones, the requester sees the grant
// on /ui, the auditor finds it in the log and in the grants as of now and verifies the log, an
// admin sees the undeliverable mail and creates and revokes an API token, and a manager of another
// site can neither see nor decide the request, even by typing its address. A screenshot of each
// page goes to screenshots/ (next to this file), at 1280 and at 375 px wide. On the way: the
// requester finds the site in the scope tree and follows the request through its stages; the
// auditor's timeline draws exactly the grants that the API's as_of gives, and the live view shows
// the admin's new token while it is open. axe-core checks every page, as each kind of user: a
// serious or critical violation fails the story.
// Exits non-zero, naming the failed step, on any failure.
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [base, requesterToken, managerToken, outsiderToken, auditorToken, adminToken, mailDir] = process.argv.slice(2);
if (!mailDir) {
  console.error('usage: node story.mjs BASE_URL REQUESTER_TOKEN MANAGER_TOKEN OUTSIDER_TOKEN AUDITOR_TOKEN ADMIN_TOKEN MAIL_DIR');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, 'screenshots');
const axeSource = readFileSync(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
mkdirSync(shots, { recursive: true });
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const profiles = [];
const browsers = [];

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

let shotNumber = 0;

/** The page as it is, checked by axe-core (no serious or critical violation) and photographed at
 * 1280 and 375 px wide (the viewport is put back after). */
async function shot(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const grave = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const said = grave.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  check(grave.length === 0, `axe-core finds no serious or critical violation on ${name} (${page.url()}): ${said.join('; ')}`);
  shotNumber += 1;
  const file = `${String(shotNumber).padStart(2, '0')}-${name}`;
  const viewport = page.viewportSize();
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: viewport.height });
    await page.screenshot({ path: join(shots, `${file}-${width}.png`), fullPage: true });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= width, `${name} fits ${width} px without scrolling sideways (${wide} px)`);
  }
  await page.setViewportSize(viewport);
}

/** Presses Tab until the element `selector` has the focus (at most `most` times): it is reached
 * by the keyboard alone, in the page's focus order. */
async function tabTo(page, selector, most = 40) {
  for (let presses = 0; presses < most; presses += 1) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await page.keyboard.press('Tab');
  }
  check(false, `${selector} is reached with the Tab key on ${page.url()}`);
}

/** The path of the "Approve" link in the mail to `address` (the server writes .eml files into
 * `mailDir`; quoted-printable soft breaks undone), waiting up to ten seconds for it. */
async function approveLink(address) {
  for (let tries = 0; tries < 100; tries += 1) {
    for (const name of readdirSync(mailDir).filter((file) => file.endsWith('.eml'))) {
      const text = readFileSync(join(mailDir, name), 'utf8').replace(/=\r?\n/g, '').replace(/=3D/g, '=');
      const link = text.includes(`To: ${address}`) && text.match(/Approve: \S*?(\/ui\/m\/[A-Za-z0-9_.~-]+)/);
      if (link) return link[1];
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`failed: a mail to ${address} with an Approve link in ${mailDir}`);
}

/** The API's answer to `path` for the person with `token`. */
async function api(token, path) {
  const answer = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  check(answer.ok, `GET ${path} answers ${answer.status}`);
  return answer.json();
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
  await shot(page, 'signin');
  await page.getByLabel('Login token').fill(token);
  await page.getByRole('button', { name: 'Sign in with the token' }).click();
  await page.waitForURL(`${base}/ui`);
  return { page, violations };
}

let failed = false;
try {
  const requester = await launch(requesterToken, { width: 390, height: 844 });
  await shot(requester.page, 'requester-home');

  await requester.page.getByRole('link', { name: 'Scopes' }).click();
  await shot(requester.page, 'scope-tree');
  // With the keyboard alone: Tab to the search box, type, Enter; later Tab to the found link, Enter.
  await tabTo(requester.page, '#q');
  await requester.page.keyboard.type('site_a');
  await requester.page.keyboard.press('Enter');
  await requester.page.waitForURL(/\/ui\/scopes\?q=site_a/);
  check((await requester.page.locator('#matches').textContent()).includes('1 scope match'), 'the tree finds one scope');
  const way = await requester.page.locator('#scope-tree [data-scope]').evaluateAll((links) => links.map((a) => a.dataset.scope));
  check(way.join(' ') === 'global EGI NGI_A SITE_A', `the tree keeps the way down to SITE_A (${way.join(' ')})`);
  await shot(requester.page, 'scope-tree-found');
  await tabTo(requester.page, '#scope-tree [data-scope="SITE_A"]');
  await requester.page.keyboard.press('Enter');
  await requester.page.waitForURL(`${base}/ui/scopes/SITE_A`);
  await shot(requester.page, 'scope-page');

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
  await shot(requester.page, 'request-form');
  await requester.page.getByRole('button', { name: 'Send the request' }).click();
  await requester.page.waitForURL(/\/ui\/requests\//);
  const requestUrl = requester.page.url();
  check((await requester.page.locator('#status').textContent()).trim() === 'pending', 'the new request is pending');
  const stagesBefore = await requester.page.locator('#stages li').evaluateAll((steps) => steps.map((s) => s.className));
  check(stagesBefore.join() === 'stage stage-current', `its one stage waits (${stagesBefore.join()})`);
  check((await requester.page.locator('#stages').textContent()).includes('manager'), 'the stage names who may still decide');
  await shot(requester.page, 'request-page');

  const manager = await launch(managerToken, { width: 1280, height: 900 });
  // The manager's mail links to a confirmation page, which decides nothing when opened.
  await manager.page.goto(`${base}${await approveLink('manager@example.org')}`);
  check((await manager.page.content()).includes('I run the batch system'), 'the mail link shows the request to its recipient');
  await shot(manager.page, 'mail-link');
  await manager.page.goto(`${base}/ui`);
  check((await manager.page.locator('#deciding').textContent()).trim() === '1', 'the header counts one request to decide');
  await manager.page.getByRole('link', { name: /To decide/ }).click();
  const card = manager.page.locator('article.request').filter({ hasText: 'I run the batch system' });
  check(await card.count() === 1, 'the request waits on /ui/decide');
  await card.getByLabel('Tick to decide with others').check();
  await manager.page.getByLabel('One comment for all of them').fill('Welcome aboard');
  await shot(manager.page, 'decide');
  await manager.page.getByRole('button', { name: 'Approve the ticked' }).click();
  await manager.page.waitForURL(`${base}/ui/decide`);
  check((await manager.page.locator('#outcome-title').textContent()).trim() === '1 approved', 'the batch reports one approval');
  check(await manager.page.locator('article.request').count() === 0, 'the queue is empty after approving');
  check((await manager.page.locator('#deciding').textContent()).trim() === '0', 'the header counts nothing left');
  await shot(manager.page, 'decided');

  await requester.page.goto(`${base}/ui`);
  const grants = await requester.page.locator('#grants').textContent();
  check(grants.includes('site-administrator') && grants.includes('SITE_A'), 'the requester sees the grant');
  await shot(requester.page, 'requester-granted');
  await requester.page.goto(requestUrl);
  const stagesAfter = await requester.page.locator('#stages li').evaluateAll((steps) => steps.map((s) => s.className));
  check(stagesAfter.join() === 'stage stage-done', `its stage is done once approved (${stagesAfter.join()})`);
  check((await requester.page.locator('#stages').textContent()).includes('manager'), 'the stage names its approver');
  await shot(requester.page, 'request-approved');
  await requester.page.getByRole('link', { name: 'Timeline' }).click();
  check(await requester.page.locator('#timeline g.grant').count() === 1, 'the requester\'s timeline draws their own grant');
  await shot(requester.page, 'requester-timeline');

  const outsider = await launch(outsiderToken, { width: 1280, height: 900 });
  check(!(await outsider.page.content()).includes('I run the batch system'), 'the outsider does not see it');
  const answer = await outsider.page.goto(requestUrl);
  check(answer.status() === 403, `typing the request's address answers 403 (got ${answer.status()})`);
  check(!(await outsider.page.content()).includes('I run the batch system'), 'the 403 page shows nothing of it');
  await shot(outsider.page, 'outsider-forbidden');

  await outsider.page.goto(`${base}/ui/decide`);
  check(await outsider.page.locator('article.request').count() === 0, 'nothing for the outsider to decide');
  const unknown = await outsider.page.goto(`${base}/ui/no-such-page`);
  check(unknown.status() === 404, `an unknown page answers 404 (got ${unknown.status()})`);
  await shot(outsider.page, 'not-found');

  const auditor = await launch(auditorToken, { width: 1280, height: 900 });
  await auditor.page.getByRole('link', { name: 'Audit' }).click();
  await auditor.page.getByLabel('Event type').fill('RoleGranted');
  await auditor.page.getByLabel('Actor (user id)').fill('manager');
  await auditor.page.getByRole('button', { name: 'Show events' }).click();
  await auditor.page.waitForURL(/\/ui\/audit\?/);
  const found = await auditor.page.locator('#events').textContent();
  check(found.includes('RoleGranted') && found.includes('site-administrator') && found.includes('requester'), 'the auditor finds the grant in the log');
  await shot(auditor.page, 'audit-log');
  // A minute ahead, in UTC as the field says: the grant made a moment ago is valid then.
  const soon = new Date(Date.now() + 60_000).toISOString().slice(0, 19);
  await auditor.page.getByLabel('Moment (UTC)').fill(soon);
  await auditor.page.getByRole('button', { name: 'Show the grants then' }).click();
  const asOf = await auditor.page.locator('#grants-as-of').textContent();
  check(asOf.includes('requester') && asOf.includes('site-administrator'), 'the grant is among the grants as of now');
  await shot(auditor.page, 'audit-as-of');
  await auditor.page.getByRole('button', { name: 'Verify the log now' }).click();
  check((await auditor.page.locator('#verified').textContent()).includes('The log is intact'), 'the log verifies');
  await shot(auditor.page, 'audit-verified');
  await auditor.page.getByRole('link', { name: 'Policy simulation' }).click();
  await shot(auditor.page, 'simulate');

  // The timeline up to a minute from now: the bars that cover `now` are the grants as of now.
  const now = new Date();
  const until = new Date(now.getTime() + 60_000).toISOString();
  await auditor.page.goto(`${base}/ui/timeline?until=${encodeURIComponent(until)}`);
  const drawn = await auditor.page.locator('#timeline g.grant').evaluateAll((rows, at) => rows
    .filter((row) => [...row.querySelectorAll('rect.bar')].some((bar) => new Date(bar.dataset.from) <= new Date(at)
      && (bar.dataset.until === '' || new Date(at) < new Date(bar.dataset.until))))
    .map((row) => row.dataset.grant).sort(), now.toISOString());
  const asOfNow = (await api(auditorToken, `/api/v1/grants?as_of=${encodeURIComponent(now.toISOString())}&limit=1000`))
    .items.map((grant) => grant.id).sort();
  check(drawn.length > 0 && drawn.join() === asOfNow.join(), `the timeline draws the grants as of now (${drawn.length} vs ${asOfNow.length})`);
  await shot(auditor.page, 'timeline');

  // The live view, open while the admin makes a token below.
  await auditor.page.goto(`${base}/ui/audit/live`);
  await auditor.page.locator('#live-status', { hasText: 'Following the log' }).waitFor();
  await shot(auditor.page, 'live-log');

  const admin = await launch(adminToken, { width: 1280, height: 900 });
  await admin.page.getByRole('link', { name: 'Administration' }).click();
  check(await admin.page.locator('#no-dead-mail, #dead-mail').count() === 1, 'the undeliverable mail is listed');
  await admin.page.getByLabel('For user (empty: yourself)').fill('requester');
  await admin.page.getByLabel('Name', { exact: true }).fill('story-ci');
  await admin.page.getByRole('button', { name: 'Create the token' }).click();
  const secret = await admin.page.locator('#new-token').inputValue();
  check(secret.startsWith('rl_'), 'the new token\'s secret is shown');
  check(!admin.page.url().includes(secret), 'the secret is not in the address');
  await shot(admin.page, 'admin-token-created');
  await auditor.page.locator('#live-events li', { hasText: 'ApiTokenCreated' }).waitFor({ timeout: 10_000 });
  await shot(auditor.page, 'live-log-token-created');
  await admin.page.getByRole('button', { name: 'Revoke the token story-ci of requester' }).click();
  await admin.page.waitForURL(`${base}/ui/admin`);
  const row = admin.page.locator('#tokens tr').filter({ hasText: 'story-ci' });
  check((await row.textContent()).includes('revoked'), 'the token is revoked');
  check(!(await admin.page.content()).includes(secret), 'the secret is never shown again');
  await shot(admin.page, 'admin');
  await admin.page.goto(`${base}/ui/admin/webhooks`);
  await shot(admin.page, 'admin-webhooks');
  await admin.page.goto(`${base}/ui/reviews`);
  await shot(admin.page, 'reviews');
  await admin.page.getByRole('link', { name: /SITE_A in spring/ }).first().click();
  await admin.page.waitForURL(/\/ui\/reviews\/[0-9a-f-]+$/);
  await shot(admin.page, 'review');

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
