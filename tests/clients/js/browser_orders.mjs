// Issue 5, browser suite: in headless Chromium an admin signs in, opens the dashboard and an
// order, and changes its status; in a second browser context the customer's "my orders" page
// shows the new status without a reload, and a change made while it was disconnected once its
// connection is back.
//
// Input (env): WEB_URL, ADMIN_EMAIL, CUSTOMER_EMAIL, PASSWORD, ORDER_ID, NEW_STATUS,
// SCREENSHOT_DIR, CHROMIUM. Output: one JSON object on stdout (what each page showed, every
// JavaScript error, the screenshots). Exit 1 with a message on stderr when a step fails.
import { env, live, runScenario, signIn } from './browser.mjs';

const ORDER_ID = env('ORDER_ID');
const NEW_STATUS = env('NEW_STATUS');

runScenario(async (session) => {
  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  const myOrders = customer.url();
  await live(customer);
  const row = `#order-${ORDER_ID} td.status`;
  const before = await customer.textContent(row);
  // A reload would drop this marker; it must survive the live update.
  await customer.evaluate(() => { window.notReloaded = true; });
  await session.shoot(customer, 'customer-my-orders-before');

  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  const dashboard = admin.url();
  await live(admin);
  await session.shoot(admin, 'admin-dashboard');
  await Promise.all([admin.waitForURL(`**/orders/${ORDER_ID}`),
    admin.click(`#order-${ORDER_ID} a`)]);
  await live(admin);
  await session.shoot(admin, 'admin-order-before');
  await admin.click(`#transition-buttons button[value="${NEW_STATUS}"]`);
  await admin.waitForSelector(`#order-status[data-status="${NEW_STATUS}"]`);
  await session.shoot(admin, 'admin-order-after');

  await customer.waitForSelector(`${row}[data-status="${NEW_STATUS}"]`);
  const after = await customer.textContent(row);
  const notReloaded = await customer.evaluate(() => window.notReloaded === true);
  await session.shoot(customer, 'customer-my-orders-after');

  // A change made while the customer is offline is missed as an event; once the connection
  // is back the page reloads its orders, so it shows anyway.
  const offlineStatus = await admin.getAttribute('#transition-buttons button', 'value');
  await customer.evaluate(() => window.Echo.connector.pusher.disconnect());
  await customer.waitForSelector('#live-status[data-state="disconnected"]');
  await admin.click(`#transition-buttons button[value="${offlineStatus}"]`);
  await admin.waitForSelector(`#order-status[data-status="${offlineStatus}"]`);
  await customer.evaluate(() => window.Echo.connector.pusher.connect());
  await customer.waitForSelector(`${row}[data-status="${offlineStatus}"]`);
  const afterReconnect = await customer.getAttribute(row, 'data-status');

  return { myOrders, dashboard, before, after, notReloaded, offlineStatus, afterReconnect };
});
