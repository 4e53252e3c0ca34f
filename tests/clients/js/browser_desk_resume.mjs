// Issue 19, browser suite: the order desk's pages catch up after the server cut them off, with
// @resound/resume, instead of reloading. The broadcaster keeps history for the order channels.
//
// SCENARIO=customer: the customer's "my orders" page and her order's page are open; the server
// closes her sockets (CUT_URL: a signed POST users/{id}/terminate_connections); an admin moves
// the order to NEW_STATUS meanwhile; she uses "Reconnect now" on each page and both show the
// new status without a reload, the list without fetching itself again, and say what changed.
// SCENARIO=dashboard: the admin dashboard is cut off (CUT_URL for the admin) while the customer
// places an order; after "Reconnect now" the new row is there, without a reload or a re-fetch.
//
// Input (env): SCENARIO, WEB_URL, ADMIN_EMAIL, CUSTOMER_EMAIL, PASSWORD, CUT_URL,
// SCREENSHOT_DIR, CHROMIUM; ORDER_ID and NEW_STATUS (customer). Output: see browser.mjs.
import { env, listFetches, live, placeOrder, rowIds, runScenario, signIn } from './browser.mjs';

// Close every socket of the user CUT_URL names, as the broadcaster's HTTP API does it.
async function cutOff() {
  const answer = await fetch(env('CUT_URL'), {
    method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' },
  });
  if (!answer.ok) throw new Error(`terminate_connections answered ${answer.status}`);
}

const offline = (page) => page.waitForSelector('#live-status[data-state="disconnected"]');

async function reconnect(page) {
  await page.click('#reconnect');
  await page.waitForSelector('#live-status[data-view="live"]');
}

const message = (page) => page.textContent('#messages');
const marked = (page) => page.evaluate(() => { window.notReloaded = true; });
const notReloaded = (page) => page.evaluate(() => window.notReloaded === true);

async function customerScenario(session) {
  const orderId = env('ORDER_ID');
  const newStatus = env('NEW_STATUS');
  const list = await session.open('customer orders');
  await signIn(list, env('CUSTOMER_EMAIL'));
  await live(list);
  const detail = await session.tab(list, 'customer order');
  await detail.goto(`${env('WEB_URL')}/orders/${orderId}`);
  await live(detail);
  for (const page of [list, detail]) await marked(page);
  const row = `#order-${orderId} td.status`;
  const before = await list.getAttribute(row, 'data-status');

  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await admin.goto(`${env('WEB_URL')}/orders/${orderId}`);
  await live(admin);

  await cutOff();
  await Promise.all([offline(list), offline(detail)]);
  const fetches = listFetches(list);
  await admin.click(`#transition-buttons button[value="${newStatus}"]`);
  await admin.waitForSelector(`#order-status[data-status="${newStatus}"]`);
  const whileAway = await list.getAttribute(row, 'data-status');

  await reconnect(list);
  await list.waitForSelector(`${row}[data-status="${newStatus}"]`);
  await session.shoot(list, 'customer-my-orders-resumed');
  await reconnect(detail);
  await detail.waitForSelector(`#order-status[data-status="${newStatus}"]`);
  await session.shoot(detail, 'customer-order-resumed');
  return {
    before, whileAway,
    after: { list: await list.getAttribute(row, 'data-status'),
      detail: await detail.getAttribute('#order-status', 'data-status') },
    messages: { list: await message(list), detail: await message(detail) },
    notReloaded: { list: await notReloaded(list), detail: await notReloaded(detail) },
    listFetches: fetches,
  };
}

async function dashboardScenario(session) {
  const dashboard = await session.open('admin dashboard');
  await signIn(dashboard, env('ADMIN_EMAIL'));
  await live(dashboard);
  await marked(dashboard);
  const rowsBefore = await rowIds(dashboard);

  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await live(customer);

  await cutOff();
  await offline(dashboard);
  const fetches = listFetches(dashboard);
  const newRow = await placeOrder(customer, 3);
  const whileAway = (await rowIds(dashboard)).includes(newRow);

  await reconnect(dashboard);
  await dashboard.waitForSelector(`#${newRow}`);
  await session.shoot(dashboard, 'admin-dashboard-resumed');
  return {
    newRow, whileAway, rowsBefore, rowsAfter: await rowIds(dashboard),
    message: await message(dashboard), notReloaded: await notReloaded(dashboard),
    listFetches: fetches,
  };
}

const SCENARIOS = { customer: customerScenario, dashboard: dashboardScenario };
const scenario = SCENARIOS[env('SCENARIO')];
if (!scenario) throw new Error(`SCENARIO must be one of ${Object.keys(SCENARIOS).join(', ')}`);
runScenario(scenario);
