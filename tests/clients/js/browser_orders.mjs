// Issue 5, browser suite: in headless Chromium an admin signs in, opens the dashboard and an
// order, and changes its status; in a second browser context the customer's "my orders" page
// shows the new status without a reload, and a change made while it was disconnected once its
// connection is back.
//
// Input (env): WEB_URL, ADMIN_EMAIL, CUSTOMER_EMAIL, PASSWORD, ORDER_ID, NEW_STATUS,
// SCREENSHOT_DIR, CHROMIUM. Output: one JSON object on stdout (what each page showed, every
// JavaScript error, the screenshots). Exit 1 with a message on stderr when a step fails.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name} in the environment`);
  return value;
};
const WEB_URL = env('WEB_URL');
const ORDER_ID = env('ORDER_ID');
const NEW_STATUS = env('NEW_STATUS');
const SCREENSHOT_DIR = env('SCREENSHOT_DIR');
const STEP_TIMEOUT_MS = 20000;
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const errors = [];
const screenshots = [];

async function openPage(browser, label) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (error) => errors.push({ page: label, kind: 'pageerror', text: String(error) }));
  page.on('console', (message) => {
    if (message.type() === 'error') {
      const source = message.location().url;
      errors.push({ page: label, kind: 'console', text: message.text(), page_url: page.url(), source });
    }
  });
  return page;
}

async function signIn(page, email) {
  await page.goto(`${WEB_URL}/login`);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', env('PASSWORD'));
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/login')),
    page.click('button[type="submit"]')]);
}

// The pages set data-subscribed on #live-status once Echo's private channel is subscribed.
const live = (page) => page.waitForSelector('#live-status[data-subscribed="true"]');

async function shoot(page, name) {
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
}

async function main() {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: CHROMIUM_ARGS });
  try {
    const customer = await openPage(browser, 'customer');
    await signIn(customer, env('CUSTOMER_EMAIL'));
    const myOrders = customer.url();
    await live(customer);
    const row = `#order-${ORDER_ID} td.status`;
    const before = await customer.textContent(row);
    // A reload would drop this marker; it must survive the live update.
    await customer.evaluate(() => { window.notReloaded = true; });
    await shoot(customer, 'customer-my-orders-before');

    const admin = await openPage(browser, 'admin');
    await signIn(admin, env('ADMIN_EMAIL'));
    const dashboard = admin.url();
    await live(admin);
    await shoot(admin, 'admin-dashboard');
    await Promise.all([admin.waitForURL(`**/orders/${ORDER_ID}`),
      admin.click(`#order-${ORDER_ID} a`)]);
    await live(admin);
    await shoot(admin, 'admin-order-before');
    await admin.click(`#transition-buttons button[value="${NEW_STATUS}"]`);
    await admin.waitForSelector(`#order-status[data-status="${NEW_STATUS}"]`);
    await shoot(admin, 'admin-order-after');

    await customer.waitForSelector(`${row}[data-status="${NEW_STATUS}"]`);
    const after = await customer.textContent(row);
    const notReloaded = await customer.evaluate(() => window.notReloaded === true);
    await shoot(customer, 'customer-my-orders-after');

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

    process.stdout.write(`${JSON.stringify({
      myOrders, dashboard, before, after, notReloaded, offlineStatus, afterReconnect, errors,
      screenshots,
    })}\n`);
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  process.stderr.write(`browser scenario failed: ${error?.stack ?? error}\n` +
    `JavaScript errors so far: ${JSON.stringify(errors)}\n`);
  process.exit(1);
});
