// Issue 11, browser suite: the admin dashboard's "Online now" and "Viewing orders" lists follow
// the webhooks without a reload. The admin's dashboard is open; the customer opens an order page
// and then closes it; the test (pytest) posts the webhooks the broadcaster sends for that.
//
// Input (env): WEB_URL, ADMIN_EMAIL, CUSTOMER_EMAIL, CUSTOMER_ID, ORDER_ID, PASSWORD,
// SCREENSHOT_DIR, CHROMIUM. Output: see browser.mjs.
import { env, live, runScenario, signIn } from './browser.mjs';

const lists = (page) => page.evaluate(() => ({
  online: [...document.querySelectorAll('#online li')].map(
    (item) => ({ id: Number(item.dataset.userId), text: item.textContent })),
  viewing: [...document.querySelectorAll('#viewing li')].map(
    (item) => ({ userId: Number(item.dataset.userId), orderId: Number(item.dataset.orderId),
      text: item.textContent })),
}));

runScenario(async (session) => {
  const dashboard = await session.open('admin dashboard');
  await signIn(dashboard, env('ADMIN_EMAIL'));
  await live(dashboard);
  await dashboard.evaluate(() => { window.notReloaded = true; });
  const before = await lists(dashboard);

  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await customer.goto(`${env('WEB_URL')}/orders/${env('ORDER_ID')}`);
  await live(customer);
  // Both at once: the customer's previous page, closed by the navigation, may still be
  // reported offline after the first of the two shows up.
  await dashboard.waitForFunction(([user, order]) =>
    document.querySelector(`#online li[data-user-id="${user}"]`)
    && document.querySelector(`#viewing li[data-user-id="${user}"][data-order-id="${order}"]`),
  [env('CUSTOMER_ID'), env('ORDER_ID')]);
  const whileOpen = await lists(dashboard);
  await session.shoot(dashboard, 'admin-dashboard-activity');
  // A dashboard opened now shows the same from the page's own data.
  const fresh = await session.tab(dashboard, 'fresh dashboard');
  await fresh.goto(dashboard.url());
  const freshPage = await lists(fresh);
  await fresh.close();

  await customer.close();
  await dashboard.waitForFunction(() => !document.querySelector('#online li, #viewing li'));
  const afterClosing = await lists(dashboard);
  const notReloaded = await dashboard.evaluate(() => window.notReloaded === true);
  return { before, whileOpen, freshPage, afterClosing, notReloaded };
});
