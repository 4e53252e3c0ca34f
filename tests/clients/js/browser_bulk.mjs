// Issue 20, browser suite: the admin list's bulk actions in headless Chromium.
//
// SCENARIO=bulk: the admin selects three pending orders (one with the keyboard) while her list
//   is stale (its socket is down) and another admin cancels one of them; "Move selected to
//   Paid" moves two and reports the third refused, with the reason. Then "Cancelled" for the
//   two asks first: "Keep" sends nothing, "Yes" cancels both.
// SCENARIO=next_step: "Mark paid" on a row, pressed with the keyboard, moves it and the row
//   offers "Start processing"; after another admin moved the order meanwhile (the list stale),
//   the click is refused with the 409 message and the row shows the current status.
//
// Input (env): SCENARIO, WEB_URL, PASSWORD, SCREENSHOT_DIR, CHROMIUM, ADMIN_EMAIL, ADMIN_TOKEN
// (API calls another admin makes meanwhile), ORDER_IDS (comma-separated: bulk's three, or
// next_step's one). Output: see browser.mjs.
import { adminMoves, env, live, runScenario, signIn } from './browser.mjs';

const ORDER_IDS = env('ORDER_IDS').split(',');

const statusOf = (page, id) => page.getAttribute(`#order-${id}`, 'data-status');
const statuses = (page) => Promise.all(ORDER_IDS.map((id) => statusOf(page, id)));

async function dashboard(session) {
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await live(admin);
  await admin.waitForSelector('#bulk-bar:not([hidden])');
  return admin;
}

// The page's socket goes down: what the list shows from now on is stale.
async function goStale(admin) {
  await admin.evaluate(() => window.Echo.connector.pusher.disconnect());
  await admin.waitForSelector('#live-status[data-view="offline"]');
}

async function bulk(session) {
  const admin = await dashboard(session);
  const [first, second, third] = ORDER_IDS;
  let posts = 0;
  admin.on('request', (request) => {
    if (request.method() === 'POST') posts += 1;
  });
  const before = { count: await admin.textContent('#bulk-count'),
    moveDisabled: await admin.isDisabled('#bulk-apply') };
  await admin.check(`#order-${first} input.select-order`);
  await admin.check(`#order-${second} input.select-order`);
  await admin.focus(`#order-${third} input.select-order`);
  await admin.keyboard.press('Space');
  const selected = { count: await admin.textContent('#bulk-count'),
    selectAllMixed: await admin.$eval('#select-all', (box) => box.indeterminate) };
  await goStale(admin);
  await adminMoves(third, 'cancelled');
  await admin.selectOption('#bulk-status', 'paid');
  await admin.click('#bulk-apply');
  await admin.waitForSelector('#bulk-report ul.bulk-refused li');
  await admin.waitForFunction((id) => document.querySelector(`#order-${id}`)
    .dataset.status === 'cancelled', third);
  const moved = { report: (await admin.innerText('#bulk-report')).replace(/\s+/g, ' ').trim(),
    refused: await admin.$$eval('#bulk-report li', (all) => all.map((li) => li.dataset.orderId)),
    statuses: await statuses(admin), count: await admin.textContent('#bulk-count'),
    focused: await admin.evaluate(() => document.activeElement.id),
    posts };
  await session.shoot(admin, 'admin-bulk-report');

  await admin.uncheck(`#order-${third} input.select-order`);
  await admin.check(`#order-${first} input.select-order`);
  await admin.check(`#order-${second} input.select-order`);
  await admin.selectOption('#bulk-status', 'cancelled');
  await admin.click('#bulk-apply');
  await admin.waitForSelector('#bulk-confirm[open]');
  const question = await admin.textContent('#bulk-confirm-title');
  await session.shoot(admin, 'admin-bulk-confirm');
  await admin.click('#bulk-confirm button[value="keep"]');
  await admin.waitForSelector('#bulk-confirm:not([open])', { state: 'attached' });
  const afterKeep = { posts, statuses: await statuses(admin),
    focused: await admin.evaluate(() => document.activeElement.id) };
  await admin.click('#bulk-apply');
  await admin.click('#bulk-confirm-yes');
  await admin.waitForFunction((id) => document.querySelector(`#order-${id}`)
    .dataset.status === 'cancelled', first);
  await admin.waitForSelector('#bulk-report p');
  return { before, selected, moved, question, afterKeep,
    cancelled: { statuses: await statuses(admin), posts,
      report: (await admin.innerText('#bulk-report')).replace(/\s+/g, ' ').trim(),
      count: await admin.textContent('#bulk-count') } };
}

async function nextStep(session) {
  session.allow(/status of 409/);
  const admin = await dashboard(session);
  const [id] = ORDER_IDS;
  const label = () => admin.textContent(`#order-${id} button.next-step`);
  const before = await label();
  await admin.focus(`#order-${id} button.next-step`);
  await admin.keyboard.press('Enter');
  await admin.waitForSelector(`#order-${id}[data-status="paid"] button.next-step`);
  const afterPaid = { label: await label(), message: await admin.textContent('#messages'),
    focused: await admin.evaluate(() => document.activeElement.dataset.next),
    // The button's right edge against the list's box: past it, the label is cut off.
    overflowPx: await admin.evaluate((selector) => {
      const button = document.querySelector(selector).getBoundingClientRect();
      const box = document.querySelector('#orders').closest('.table-wrap').getBoundingClientRect();
      return Math.max(0, Math.round(button.right - box.right));
    }, `#order-${id} button.next-step`) };
  await goStale(admin);
  await adminMoves(id, 'processing');
  await admin.click(`#order-${id} button.next-step`);
  await admin.waitForSelector('#messages .message-error');
  await admin.waitForSelector(`#order-${id}[data-status="processing"]`);
  await session.shoot(admin, 'admin-next-step-conflict');
  return { before, afterPaid, message: await admin.textContent('#messages'),
    afterConflict: await label() };
}

const SCENARIOS = { bulk, next_step: nextStep };
const scenario = SCENARIOS[env('SCENARIO')];
if (!scenario) throw new Error(`SCENARIO must be one of ${Object.keys(SCENARIOS).join(', ')}`);
runScenario(scenario);
