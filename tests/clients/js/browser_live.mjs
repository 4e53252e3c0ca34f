// Issue 14, browser suite: the live parts of the pages that browser_orders.mjs does not drive.
//
// SCENARIO=viewers: an admin and the customer open the same order page; each page's "Viewing
// now" list shows both, and the admin's drops the customer when her page closes.
// SCENARIO=dashboard: the admin dashboard is open; the customer places an order from her page
// and the new row appears on the dashboard; the admin moves it to NEW_STATUS from another tab
// and the dashboard's row follows, all without a reload.
//
// Input (env): SCENARIO, WEB_URL, ADMIN_EMAIL, CUSTOMER_EMAIL, PASSWORD, SCREENSHOT_DIR,
// CHROMIUM; ORDER_ID (viewers); NEW_STATUS (dashboard). Output: see browser.mjs.
import { env, live, placeOrder, rowIds, runScenario, signIn } from './browser.mjs';

const viewers = (page) => page.$$eval('#viewers li', (items) => items.map(
  (item) => ({ id: Number(item.dataset.userId), name: item.textContent })));
const viewerCount = (page, count) => page.waitForFunction(
  (n) => document.querySelectorAll('#viewers li').length === n, count);

async function viewersScenario(session) {
  const orderUrl = `${env('WEB_URL')}/orders/${env('ORDER_ID')}`;
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await admin.goto(orderUrl);
  await viewerCount(admin, 1);
  const alone = await viewers(admin);

  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await customer.goto(orderUrl);
  await viewerCount(customer, 2);
  await viewerCount(admin, 2);
  const together = { admin: await viewers(admin), customer: await viewers(customer) };
  await session.shoot(admin, 'order-viewers-together');

  await customer.close();
  await viewerCount(admin, 1);
  const afterLeaving = await viewers(admin);
  await session.shoot(admin, 'order-viewers-after-leaving');
  return { alone, together, afterLeaving };
}

const rowOf = (page, selector) => page.$eval(selector, (row) => ({
  position: [...row.parentNode.children].indexOf(row),
  customer: row.querySelector('td.customer').textContent,
  status: row.querySelector('td.status').dataset.status,
  label: row.querySelector('td.status').textContent,
  items: Number(row.querySelector('td.items').textContent),
  total: row.querySelector('td.total data').value,
}));

async function dashboardScenario(session) {
  const dashboard = await session.open('admin dashboard');
  await signIn(dashboard, env('ADMIN_EMAIL'));
  const dashboardUrl = dashboard.url();
  await live(dashboard);
  // A reload would drop this marker; it must survive the live updates.
  await dashboard.evaluate(() => { window.notReloaded = true; });
  const rowsBefore = (await rowIds(dashboard)).length;

  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await live(customer);
  const newRow = await placeOrder(customer, 2);
  const orderId = newRow.slice('order-'.length);

  const row = `#order-${orderId}`;
  await dashboard.waitForSelector(row);
  const created = await rowOf(dashboard, row);
  await session.shoot(dashboard, 'admin-dashboard-new-row');

  const orderTab = await session.tab(dashboard, 'admin order');
  await orderTab.goto(`${env('WEB_URL')}/orders/${orderId}`);
  await live(orderTab);
  await orderTab.click(`#transition-buttons button[value="${env('NEW_STATUS')}"]`);
  await dashboard.waitForSelector(`${row} td.status[data-status="${env('NEW_STATUS')}"]`);
  const updated = await rowOf(dashboard, row);
  await session.shoot(dashboard, 'admin-dashboard-row-updated');

  const notReloaded = await dashboard.evaluate(() => window.notReloaded === true);
  return {
    dashboardUrl, rowsBefore, rowsAfter: (await rowIds(dashboard)).length,
    orderId: Number(orderId), created, updated, notReloaded,
  };
}

const SCENARIOS = { viewers: viewersScenario, dashboard: dashboardScenario };
const scenario = SCENARIOS[env('SCENARIO')];
if (!scenario) throw new Error(`SCENARIO must be one of ${Object.keys(SCENARIOS).join(', ')}`);
runScenario(scenario);
