// Laravel Echo configured for Reverb, exactly as a Laravel app's resources/js/echo.js does,
// with @resound/resume, plus small helpers the pages share. pusher.js and echo.js come from
// /vendor (node_modules), @resound/resume from /vendor/resume/ (its package, clients/js).
import { installResume } from '/vendor/resume/index.js';

(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('echo-config').textContent);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const EchoClass = window.Echo.default;
  // Before new Echo: pusher-js opens its socket in the constructor.
  const resume = installResume(window.Pusher);

  window.Echo = new EchoClass({
    broadcaster: 'reverb',
    key: config.key,
    wsHost: config.host,
    wsPort: config.port,
    wssPort: config.port,
    forceTLS: (config.scheme || 'https') === 'https',
    enabledTransports: ['ws', 'wss'],
    authEndpoint: '/broadcasting/auth',
    auth: { headers: { 'X-CSRF-TOKEN': csrfToken } },
    userAuthentication: {
      endpoint: '/broadcasting/user-auth',
      headers: { 'X-CSRF-TOKEN': csrfToken },
    },
  });

  // Channels with history (RESOUND_APP_HISTORY) catch up by themselves after a reconnect;
  // live.js hears how each did from the document's resound:resumed and resound:failed events
  // ({channel, ...} as @resound/resume reports them).
  function announce(kind) {
    return function (channel, detail) {
      const about = Object.assign({ channel: channel }, detail);
      document.dispatchEvent(new CustomEvent('resound:' + kind, { detail: about }));
    };
  }
  const history = resume.track(window.Echo.connector.pusher,
                               { resumed: announce('resumed'), failed: announce('failed') });

  // An API answer that was not 2xx: `status` is the HTTP status, the message its JSON reason.
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // The JSON API with the session cookie: CSRF header, and X-Socket-ID so our own socket
  // does not get the event back (Laravel's toOthers()). `options.headers` adds headers.
  async function api(path, options) {
    const opts = options || {};
    const headers = Object.assign(
      { 'Accept': 'application/json', 'X-CSRF-TOKEN': csrfToken }, opts.headers);
    const socketId = window.Echo.socketId();
    if (socketId) headers['X-Socket-ID'] = socketId;
    if (opts.json !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method: opts.method || 'GET',
      headers: headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: opts.json !== undefined ? JSON.stringify(opts.json) : undefined,
    });
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;  // not JSON (a proxy's error page): the status says enough
    }
    if (!response.ok) {
      const reason = body && body.error ? body.error : 'the server answered ' + response.status;
      if (response.status === 401 && window.Resound.live) window.Resound.live.signedOut();
      throw new ApiError(response.status, reason);
    }
    return body;
  }

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.entries(attributes || {}).forEach(function ([name, value]) {
      node.setAttribute(name, value);
    });
    return node;
  }

  // A fresh key for one fill of a form: a double click sends the same key, so the server
  // answers the repeat with the first order instead of placing a second one.
  function idempotencyKey() {
    if (window.crypto.randomUUID) return window.crypto.randomUUID();
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, '0'); }).join('');
  }

  // What the page says after an action, in the aria-live region under the header.
  function say(text, kind) {
    const region = document.getElementById('messages');
    region.replaceChildren(element('p', text, { class: 'message message-' + (kind || 'info') }));
  }

  // Open `dialog` (a <dialog> whose form's confirming button has value "confirm") and resolve
  // true when the person confirms, false when they close it any other way.
  function ask(dialog) {
    return new Promise(function (resolve) {
      dialog.addEventListener('close', function () {
        resolve(dialog.returnValue === 'confirm');
      }, { once: true });
      dialog.returnValue = '';
      dialog.showModal();
    });
  }

  window.Resound = { api: api, element: element, idempotencyKey: idempotencyKey, say: say,
                     history: history, ask: ask };
})();
