// Issue 13, browser suite: the order desk's server side in headless Chromium.
//
// SCENARIO=next: a signed-out customer opens an order's page, signs in, and lands on that
// order; opening /login signed in goes home (or to a local next); a next naming another site
// (HOSTILE, JSON list) is ignored.
// SCENARIO=head: HEAD /login and HEAD /orders from the page answer 200.
// SCENARIO=errors: a customer opens the dashboard (403), a missing page (404) and signs out
// with a stale CSRF token (400): each is a page in the app's layout with a way back.
// SCENARIO=back: without JavaScript, the customer goes from "my orders" to an order, an admin
// moves the order (API), and Back shows the new status, not a stale copy.
// SCENARIO=double: the customer's page sends one order twice at once with one Idempotency-Key.
// SCENARIO=stale: without JavaScript, two admins open one order; one moves it to NEW_STATUS,
// the other then clicks STALE_STATUS on the page as first loaded and is told it changed.
//
// Input (env): SCENARIO, WEB_URL, ADMIN_EMAIL, CUSTOMER_EMAIL, PASSWORD, SCREENSHOT_DIR,
// CHROMIUM; ORDER_ID (next, back, stale); HOSTILE (next); NEW_STATUS (back, stale);
// STALE_STATUS (stale). Output: see browser.mjs; `pageErrors` lists what the error pages
// logged besides the expected failed loads.
import { env, runScenario, signIn } from './browser.mjs';

const WEB = env('WEB_URL');
const statusOf = (page, id) => page.getAttribute(`#order-${id} td.status`, 'data-status');

// A page in a fresh context without JavaScript: what a no-JS visitor (or a form before its
// script loads) gets.
async function openWithoutScripts(session, label) {
  const context = await session.browser.newContext({
    viewport: { width: 1100, height: 800 }, javaScriptEnabled: false });
  return session.watch(await context.newPage(), label);
}

// Fill and send the sign-in form of the page already open, and wait to leave /login.
async function submitLogin(page, email) {
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', env('PASSWORD'));
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/login')),
    page.click('button[type="submit"]')]);
}

async function nextScenario(session) {
  const orderPath = `/orders/${env('ORDER_ID')}`;
  const customer = await session.open('customer');
  await customer.goto(WEB + orderPath);
  const sentTo = customer.url();
  await submitLogin(customer, env('CUSTOMER_EMAIL'));
  const landed = customer.url();
  await customer.goto(`${WEB}/login`);
  const loginWhenSignedIn = customer.url();
  await customer.goto(`${WEB}/login?next=${encodeURIComponent(orderPath)}`);
  const loginWithNext = customer.url();

  const hostile = {};
  for (const target of JSON.parse(env('HOSTILE'))) {
    const page = await session.open(`hostile ${target}`);
    await page.goto(`${WEB}/login?next=${encodeURIComponent(target)}`);
    await submitLogin(page, env('CUSTOMER_EMAIL'));
    hostile[target] = page.url();
    await page.context().close();
  }
  return { sentTo, landed, loginWhenSignedIn, loginWithNext, hostile };
}

async function headScenario(session) {
  const page = await session.open('customer');
  await page.goto(`${WEB}/login`);
  const head = (path) => page.evaluate(
    async (url) => (await fetch(url, { method: 'HEAD' })).status, path);
  const signedOut = await head('/login');
  await signIn(page, env('CUSTOMER_EMAIL'));
  return { signedOut, signedIn: { login: await head('/login'), orders: await head('/orders') } };
}

async function errorsScenario(session) {
  // Not session.watch: a 4xx page load is logged as a console error, which is expected here.
  const context = await session.browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error' &&
        !/^Failed to load resource: the server responded with a status of 40[034]/.test(text)) {
      pageErrors.push(text);
    }
  });
  await signIn(page, env('CUSTOMER_EMAIL'));
  const shown = async (response) => ({
    status: response.status(),
    layout: await page.locator('header a.brand').count(),
    title: (await page.textContent('#error h1')).trim(),
    message: (await page.textContent('#error .error-message')).trim(),
    back: await page.getAttribute('#error-back', 'href'),
  });

  const forbidden = await shown(await page.goto(`${WEB}/admin/orders`));
  await session.shoot(page, 'error-403');
  await Promise.all([page.waitForURL(`${WEB}/orders`), page.click('#error-back')]);
  const backTo = page.url();
  const missing = await shown(await page.goto(`${WEB}/no-such-page`));

  // A form whose CSRF token went stale (e.g. signed out and in again in another tab).
  await page.goto(`${WEB}/orders`);
  await page.$eval('form[action="/logout"] input[name="csrf_token"]',
    (input) => { input.value = 'stale'; });
  const [csrfResponse] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${WEB}/logout`),
    page.click('form[action="/logout"] button[type="submit"]')]);
  await page.waitForSelector('#error');
  const csrf = await shown(csrfResponse);
  await session.shoot(page, 'error-400-csrf');
  await context.close();
  return { forbidden, backTo, missing, csrf, pageErrors };
}

async function adminToken() {
  const answer = await fetch(`${WEB}/api/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: env('ADMIN_EMAIL'), password: env('PASSWORD') }),
  });
  return (await answer.json()).token;
}

async function backScenario(session) {
  const id = env('ORDER_ID');
  const customer = await openWithoutScripts(session, 'customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  const before = await statusOf(customer, id);
  await Promise.all([customer.waitForURL(`**/orders/${id}`), customer.click(`#order-${id} a`)]);

  const moved = await fetch(`${WEB}/api/orders/${id}/transition`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await adminToken()}` },
    body: JSON.stringify({ status: env('NEW_STATUS') }),
  });
  if (!moved.ok) throw new Error(`transition: ${moved.status} ${await moved.text()}`);

  await customer.goBack();
  await customer.waitForSelector(`#order-${id}`);
  return { before, afterBack: await statusOf(customer, id), url: customer.url() };
}

async function doubleScenario(session) {
  const customer = await session.open('customer');
  await signIn(customer, env('CUSTOMER_EMAIL'));
  const answers = await customer.evaluate(async () => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const key = crypto.randomUUID();
    const send = () => fetch('/api/orders', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-TOKEN': csrf,
        'Idempotency-Key': key },
      body: JSON.stringify({ items: [{ product_id: 1, quantity: 1 }] }),
    }).then(async (response) => ({ status: response.status, body: await response.json() }));
    return Promise.all([send(), send()]);
  });
  return { answers };
}

async function staleScenario(session) {
  const orderUrl = `${WEB}/orders/${env('ORDER_ID')}`;
  const first = await openWithoutScripts(session, 'first admin');
  await signIn(first, env('ADMIN_EMAIL'));
  await first.goto(orderUrl);
  const seen = await first.getAttribute('#order-status', 'data-status');
  // The status the page showed goes with the form (templates/order.html's hidden field).
  await first.$eval('#transitions', (form, status) => {
    if (!form.elements.expected_status) {
      const field = document.createElement('input');
      Object.assign(field, { type: 'hidden', name: 'expected_status', value: status });
      form.appendChild(field);
    }
  }, seen);

  const second = await openWithoutScripts(session, 'second admin');
  await signIn(second, env('ADMIN_EMAIL'));
  await second.goto(orderUrl);
  await Promise.all([second.waitForURL(orderUrl),
    second.click(`#transition-buttons button[value="${env('NEW_STATUS')}"]`)]);

  await first.fill('input[name="notes"]', 'as I saw it');
  await Promise.all([first.waitForURL(orderUrl),
    first.click(`#transition-buttons button[value="${env('STALE_STATUS')}"]`)]);
  const flash = (await first.textContent('.flash')).trim();
  await session.shoot(first, 'order-stale-click');
  return { seen, flash, now: await first.getAttribute('#order-status', 'data-status') };
}

const SCENARIOS = { next: nextScenario, head: headScenario, errors: errorsScenario,
  back: backScenario, double: doubleScenario, stale: staleScenario };
runScenario(SCENARIOS[env('SCENARIO')]);
