// Issue 20, browser suite: the order lists' sorting, a filtered view under live updates and the
// admins' live summary strip, in headless Chromium against the real webapp and broadcaster.
//
// SCENARIO=sorting: the admin's dashboard, newest first; the "Total" header reached with the
//   keyboard (Tab from the first header) and Enter sorts by total, highest first; a click sorts
//   it lowest first; an order placed meanwhile (the cheapest) arrives at the top of that view.
// SCENARIO=live_filter: the admin looks at alice's pending orders, cheapest first, with the
//   summary strip above. bob places an order (not in the view), then alice (in the view): hers
//   appears, his does not; paid, hers leaves the view. Each step reports the rows, the tabs'
//   counts and the summary strip once they show the change.
// SCENARIO=pages: alice's list, 10 a page chosen with the page size form, then page 2 by its
//   number; then, 390 px wide, sorted by total with the search form's Sort choice.
// SCENARIO=page_gone: the admin is on page 2 of 2 of the pending orders, one a page; the order
//   there is paid, so page 2 is gone: the page goes to the last page, 1.
// SCENARIO=plain_pages: every order, newest first, two a page: the admin has page 1 and page 2
//   open. ORDER_ID (on page 2) is paid: page 1 keeps its rows, its counts follow; then alice
//   places an order: it comes on top of page 1, and page 2 shifts. Each page reports the list
//   fetches it made meanwhile.
// SCENARIO=late_script: the admin's dashboard again, its summary.js held back until the page's
//   channel is subscribed and bob's order placed meanwhile is in the list: the strip, whose
//   script missed that order's event, counts it all the same.
//
// Input (env): SCENARIO, WEB_URL, PASSWORD, SCREENSHOT_DIR, CHROMIUM, ADMIN_EMAIL,
// CUSTOMER_EMAIL, ADMIN_TOKEN, CUSTOMER_TOKEN, OTHER_TOKEN (bob's); ORDER_ID (plain_pages).
// Output: see browser.mjs.
import { env, holdScript, listFetches, live, rowIds, runScenario, signIn } from './browser.mjs';

const WEB_URL = env('WEB_URL');

async function call(method, path, token, body) {
  const answer = await fetch(`${WEB_URL}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(`${method} ${path}: ${answer.status} ${await answer.text()}`);
  return answer.json();
}

const placeOrder = async (token, productId) => (await call('POST', '/api/orders', token,
  { items: [{ product_id: productId, quantity: 1 }] })).order;

const counts = (page) => page.$$eval('[data-count-for]', (all) => Object.fromEntries(
  all.map((node) => [node.dataset.countFor, Number(node.textContent)])));

// The strip's figures as the page shows them (the revenue as its plain amount).
const summary = (page) => page.$eval('#summary', (strip) => ({
  orders_today: Number(strip.querySelector('[data-summary="orders_today"]').textContent),
  revenue_today: strip.querySelector('[data-summary="revenue_today"] data').value,
  pending: Number(strip.querySelector('[data-statuses="pending"]').textContent),
  to_ship: Number(strip.querySelector('[data-statuses="paid processing"]').textContent),
}));

const sortedBy = async (page) => ({
  ids: await rowIds(page),
  column: await page.textContent('th[aria-sort] a'),
  ariaSort: await page.getAttribute('th[aria-sort]', 'aria-sort'),
  caption: await page.textContent('#orders caption'),
});

async function sorting(session) {
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await live(admin);
  const byDefault = await sortedBy(admin);
  // Keyboard only: from the first sortable header (the admin's first column selects rows),
  // Tab until the "Total" header has the focus.
  await admin.focus('thead a.sort');
  const stops = [];
  for (let press = 0; press < 8; press += 1) {
    const focused = await admin.evaluate(() => document.activeElement.textContent.trim());
    stops.push(focused);
    if (focused === 'Total') break;
    await admin.keyboard.press('Tab');
  }
  await Promise.all([admin.waitForURL('**/admin/orders?sort=-total'), admin.keyboard.press('Enter')]);
  await live(admin);
  const descending = await sortedBy(admin);
  await session.shoot(admin, 'admin-dashboard-sorted');
  await Promise.all([admin.waitForURL('**/admin/orders?sort=total'), admin.click('th[aria-sort] a')]);
  await live(admin);
  const ascending = await sortedBy(admin);
  const cheapest = await placeOrder(env('CUSTOMER_TOKEN'), 1);
  await admin.waitForFunction(
    (id) => document.querySelector('#orders tbody tr')?.id === `order-${id}`, cheapest.id);
  return { byDefault, stops, descending, ascending, cheapestId: cheapest.id,
    afterPlaced: await rowIds(admin) };
}

async function liveFilter(session) {
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await admin.goto(`${WEB_URL}/admin/orders?status=pending&q=alice&sort=total`);
  await live(admin);
  const look = async () => ({ ids: await rowIds(admin), counts: await counts(admin),
    summary: await summary(admin) });
  const before = await look();

  const his = await placeOrder(env('OTHER_TOKEN'), 2);
  const hers = await placeOrder(env('CUSTOMER_TOKEN'), 1);
  await admin.waitForSelector(`#order-${hers.id}`);
  // Both events are in: the tabs count both orders, the strip both today's orders.
  await admin.waitForFunction((expected) => {
    const shown = (selector) => Number(document.querySelector(selector).textContent);
    return shown('[data-count-for="pending"]') === expected.pending &&
      shown('#summary [data-summary="orders_today"]') === expected.today &&
      shown('#summary [data-statuses="pending"]') === expected.pending;
  }, { pending: before.counts.pending + 2, today: before.summary.orders_today + 2 });
  const entered = await look();
  await session.shoot(admin, 'admin-dashboard-filtered-live');

  await call('POST', `/api/orders/${hers.id}/transition`, env('ADMIN_TOKEN'), { status: 'paid' });
  await admin.waitForSelector(`#order-${hers.id}`, { state: 'detached' });
  await admin.waitForFunction((expected) => {
    const shown = (selector) => Number(document.querySelector(selector).textContent);
    return shown('[data-count-for="paid"]') === expected.paid &&
      shown('#summary [data-statuses="paid processing"]') === expected.toShip &&
      document.querySelector('#summary [data-summary="revenue_today"] data').value !==
        expected.revenue;
  }, { paid: before.counts.paid + 1, toShip: before.summary.to_ship + 1,
    revenue: before.summary.revenue_today });
  const left = await look();
  return { hisId: his.id, hersId: hers.id, hersTotal: hers.total, before, entered, left };
}

async function pages(session) {
  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  await live(customer);
  await customer.selectOption('#per-page', '10');
  await Promise.all([customer.waitForURL('**/orders?per_page=10'),
    customer.click('.per-page button[type="submit"]')]);
  await live(customer);
  const first = await rowIds(customer);
  await Promise.all([customer.waitForURL('**/orders?per_page=10&page=2'),
    customer.click('.pager a[aria-label="Page 2"]')]);
  await live(customer);
  await session.shoot(customer, 'customer-orders-page-2');
  const second = { ids: await rowIds(customer),
    current: await customer.textContent('.pager a[aria-current="page"]'),
    caption: await customer.textContent('#orders caption') };
  // On a phone the column headers are hidden: the search form's Sort choice sorts.
  await customer.setViewportSize({ width: 390, height: 844 });
  await customer.selectOption('#sort-by', '-total');
  await Promise.all([customer.waitForURL('**sort=-total**'),
    customer.click('.search button[type="submit"]')]);
  await live(customer);
  return { first, second, phoneSorted: { url: customer.url(), ids: await rowIds(customer) } };
}

async function pageGone(session) {
  session.allow(/status of 404/);  // the view's page 2 is gone: GET /api/orders says so
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await admin.goto(`${WEB_URL}/admin/orders?status=pending&per_page=1&page=2`);
  await live(admin);
  const before = { url: admin.url(), ids: await rowIds(admin) };
  const id = Number(before.ids[0].replace('order-', ''));
  await call('POST', `/api/orders/${id}/transition`, env('ADMIN_TOKEN'), { status: 'paid' });
  await admin.waitForURL('**/admin/orders?status=pending&per_page=1&page=1');
  await live(admin);
  return { before, after: { ids: await rowIds(admin),
    caption: await admin.textContent('#orders caption') } };
}

async function plainPages(session) {
  const first = await session.open('admin page 1');
  await signIn(first, env('ADMIN_EMAIL'));
  await first.goto(`${WEB_URL}/admin/orders?per_page=2`);
  await live(first);
  const second = await session.tab(first, 'admin page 2');
  await second.goto(`${WEB_URL}/admin/orders?per_page=2&page=2`);
  await live(second);
  const before = { first: await rowIds(first), second: await rowIds(second) };
  const fetches = { first: listFetches(first), second: listFetches(second) };
  const paidCount = () => first.$eval('[data-count-for="paid"]', (n) => Number(n.textContent));

  const paidBefore = await paidCount();
  await call('POST', `/api/orders/${env('ORDER_ID')}/transition`, env('ADMIN_TOKEN'),
    { status: 'paid' });
  await first.waitForFunction((expected) => Number(
    document.querySelector('[data-count-for="paid"]').textContent) === expected, paidBefore + 1);
  await second.waitForSelector(`#order-${env('ORDER_ID')}[data-status="paid"]`);
  const afterPaid = { first: await rowIds(first), second: await rowIds(second) };

  const placed = await placeOrder(env('CUSTOMER_TOKEN'), 1);
  await first.waitForSelector(`#orders tbody tr:first-child#order-${placed.id}`);
  await second.waitForSelector(`#orders tbody tr:first-child#${before.first[1]}`);
  return { placedId: placed.id, before, afterPaid,
    afterPlaced: { first: await rowIds(first), second: await rowIds(second) }, fetches };
}

async function lateScript(session) {
  const admin = await session.open('admin');
  await signIn(admin, env('ADMIN_EMAIL'));
  await live(admin);
  const before = await summary(admin);
  let placed;
  await holdScript(admin, 'summary.js', async () => {
    await admin.waitForFunction(() => Object.values(window.Echo?.connector?.channels ?? {})
      .some((channel) => channel.subscription.subscribed), null, { polling: 20 });
    placed = await placeOrder(env('OTHER_TOKEN'), 2);
    await admin.waitForSelector(`#order-${placed.id}`);
  });
  await admin.reload();
  await live(admin);
  await admin.waitForFunction((expected) => Number(document.querySelector(
    '#summary [data-summary="orders_today"]').textContent) === expected, before.orders_today + 1);
  return { placedId: placed.id, before, after: await summary(admin) };
}

const SCENARIOS = { sorting, live_filter: liveFilter, pages, page_gone: pageGone,
  plain_pages: plainPages, late_script: lateScript };
const scenario = SCENARIOS[env('SCENARIO')];
if (!scenario) throw new Error(`SCENARIO must be one of ${Object.keys(SCENARIOS).join(', ')}`);
runScenario(scenario);
