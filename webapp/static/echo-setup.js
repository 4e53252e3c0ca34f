// Laravel Echo configured for Reverb, exactly as a Laravel app's resources/js/echo.js does,
// plus small helpers the pages share. pusher.js and echo.js come from /vendor (node_modules).
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('echo-config').textContent);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const EchoClass = window.Echo.default;

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

  const liveStatus = document.getElementById('live-status');

  function showState(state) {
    if (!liveStatus) return;
    liveStatus.dataset.state = state;
    liveStatus.textContent = state === 'connected'
      ? 'Live: changes appear as they happen.'
      : 'Live updates: ' + state + '…';
  }

  window.Echo.connector.pusher.connection.bind('state_change', function (states) {
    showState(states.current);
  });

  // Mark the page once a channel is subscribed, so people (and tests) know it is live. Every
  // later subscription follows a lost connection, whose events were missed: then reload
  // (the page's own refetch), now that nothing published from here on can be missed.
  function whenSubscribed(channel, reload) {
    let subscriptions = 0;
    channel.subscribed(function () {
      subscriptions += 1;
      if (liveStatus) liveStatus.dataset.subscribed = 'true';
      if (subscriptions > 1 && reload) reload();
    });
    channel.error(function (error) {
      if (liveStatus) liveStatus.textContent = 'Live updates refused: ' + JSON.stringify(error);
    });
    return channel;
  }

  // The JSON API with the session cookie: CSRF header, and X-Socket-ID so our own socket
  // does not get the event back (Laravel's toOthers()).
  async function api(path, options) {
    const headers = { 'Accept': 'application/json', 'X-CSRF-TOKEN': csrfToken };
    const socketId = window.Echo.socketId();
    if (socketId) headers['X-Socket-ID'] = socketId;
    if (options && options.json !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method: (options && options.method) || 'GET',
      headers: headers,
      credentials: 'same-origin',
      body: options && options.json !== undefined ? JSON.stringify(options.json) : undefined,
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || ('HTTP ' + response.status));
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

  window.Resound = { api: api, element: element, whenSubscribed: whenSubscribed };
})();
