// The connection indicator and what "Live" promises: the page shows "Live" only while it is
// connected AND has re-fetched its data since it last (re)subscribed or came back from the
// back/forward cache, so "Live" never sits over stale data. A channel with history instead
// catches up after a reconnect (@resound/resume hands the page each missed event, then
// resound:resumed) and re-fetches only when that fails (resound:failed). The page also signs in
// over the socket, so that signing out elsewhere can end this page's live access; a page that
// loses it says so in words, with a link to sign in again.
(function () {
  'use strict';
  const pusher = window.Echo.connector.pusher;
  const status = document.getElementById('live-status');
  const reconnectButton = document.getElementById('reconnect');
  const reloads = [];
  const followed = new Set();
  const subscribedBefore = new Set();  // channel names subscribed on an earlier connection
  const catchingUp = new Set();  // history channels resubscribed, waiting for their resume
  const MAX_RELOADS_IN_A_ROW = 3;
  let everConnected = false;
  let fresh = false;
  let refreshing = null;
  let refreshAgain = false;
  let eventsSeen = 0;
  let signedOut = false;
  let ourDisconnect = false;

  const VIEWS = {
    live: 'Live: changes appear as they happen.',
    updating: 'Updating…',
    connecting: 'Connecting for live updates…',
    reconnecting: 'Reconnecting…',
    offline: 'Offline: changes are not shown.',
    'signed-out': 'Signed out',
  };

  function view() {
    const state = pusher.connection.state;
    if (signedOut) return 'signed-out';
    if (state === 'connected') return fresh && !catchingUp.size ? 'live' : 'updating';
    if (state === 'unavailable') return 'reconnecting';
    if (state === 'disconnected' || state === 'failed') return 'offline';
    return everConnected ? 'reconnecting' : 'connecting';
  }

  function show() {
    const current = view();
    status.dataset.state = pusher.connection.state;
    status.dataset.view = current;
    if (current === 'live') status.dataset.subscribed = 'true';
    else delete status.dataset.subscribed;
    status.textContent = VIEWS[current];
    reconnectButton.hidden = !(current === 'reconnecting' || current === 'offline');
  }

  // Re-fetch everything the page shows. Events that arrive meanwhile may be newer than the
  // answer, so fetch again when any did (a few times at most).
  async function refresh() {
    if (signedOut) return;
    fresh = false;
    show();
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = (async function () {
      let rounds = 0;
      try {
        do {
          refreshAgain = false;
          const seen = eventsSeen;
          await Promise.all(reloads.map(function (reload) { return reload(); }));
          if (eventsSeen !== seen) refreshAgain = true;
          rounds += 1;
        } while (refreshAgain && rounds < MAX_RELOADS_IN_A_ROW);
        fresh = pusher.connection.state === 'connected';
      } catch (error) {
        if (!signedOut) {
          window.Resound.say('Could not update this page: ' + error.message +
                             '. Use “Reconnect now” or reload the page.', 'error');
        }
      } finally {
        refreshing = null;
        show();
      }
    })();
  }

  // Ask the server whether we are still signed in (a 401 calls signedOut via Resound.api).
  let checking = null;
  function checkSession() {
    if (signedOut || checking) return;
    checking = window.Resound.api('/api/products')
      .catch(function () { /* 401 is handled by api(); other failures leave us offline */ })
      .finally(function () { checking = null; });
  }

  function markSignedOut() {
    if (signedOut) return;
    signedOut = true;
    fresh = false;
    ourDisconnect = true;
    pusher.disconnect();
    const banner = document.getElementById('signed-out');
    const link = document.getElementById('sign-in-again');
    link.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
    banner.hidden = false;
    document.querySelector('.account').hidden = true;
    document.querySelectorAll('main button').forEach(function (button) { button.disabled = true; });
    show();
  }

  // `name` is subscribed: the first time, or without history, fetch everything again; a
  // history channel subscribed again after a reconnect catches up instead.
  function subscribed(name) {
    const again = subscribedBefore.has(name);
    subscribedBefore.add(name);
    if (again && window.Resound.history.position(name)) {
      catchingUp.add(name);
      show();
    } else {
      refresh();
    }
  }

  document.addEventListener('resound:resumed', function (event) {
    if (!catchingUp.delete(event.detail.channel)) return;
    const missed = event.detail.replayed;
    if (missed) {
      window.Resound.say('Back online: ' + missed + (missed === 1 ? ' change' : ' changes') +
                         ' made while this page was offline ' + (missed === 1 ? 'is' : 'are') +
                         ' shown.', 'info');
    }
    // Caught up: as fresh as a re-fetch would make it (one still running decides itself).
    if (!catchingUp.size && !refreshing) fresh = pusher.connection.state === 'connected';
    show();
  });
  document.addEventListener('resound:failed', function (event) {
    catchingUp.delete(event.detail.channel);
    refresh();  // events may be missing: fetch everything again
  });

  // Follow `channel` (an Echo channel): re-fetch with `reload` each time it is subscribed (a
  // history channel: only the first time, and when catching up fails). Scripts sharing a
  // channel each add their reload; the channel is watched once. A script may run after the
  // channel was subscribed (the browser handles the socket's frames while it waits for a
  // script file), and so miss events: then the page re-fetches at once.
  function follow(channel, reload) {
    if (reload) reloads.push(reload);
    const already = channel.subscription.subscribed;
    if (followed.has(channel)) {
      if (already && reload) refresh();
      return channel;
    }
    followed.add(channel);
    if (already) subscribed(channel.name);
    channel.subscribed(function () { subscribed(channel.name); });
    channel.error(function (error) {
      checkSession();
      if (error && error.status !== 401 && error.status !== 403) {
        window.Resound.say('Live updates are not available right now; the page will keep ' +
                           'trying. Reload it if this stays.', 'error');
      }
    });
    channel.subscription.bind_global(function (name) {
      if (!name.startsWith('pusher')) eventsSeen += 1;
    });
    return channel;
  }

  function connectionIs(state) {
    if (state === 'connected') {
      everConnected = true;
      if (!reloads.length) fresh = true;  // nothing to re-fetch on this page
    } else {
      fresh = false;
    }
  }

  pusher.connection.bind('state_change', function (states) {
    connectionIs(states.current);
    if ((states.current === 'disconnected' || states.current === 'failed') && !ourDisconnect) {
      checkSession();  // terminated after signing out elsewhere, or refused?
    }
    ourDisconnect = false;
    show();
  });
  pusher.user.bind('pusher:signin_error', checkSession);

  reconnectButton.addEventListener('click', function () {
    ourDisconnect = true;
    if (pusher.connection.state !== 'disconnected') pusher.disconnect();
    pusher.connect();
  });

  // Back/Forward may restore this page from the browser's memory, as it was: not live until
  // its data is fetched again.
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted) return;
    fresh = false;
    show();
    if (pusher.connection.state === 'connected') refresh();
    else pusher.connect();
  });

  window.Resound.live = { follow: follow, signedOut: markSignedOut };
  // The socket opens in echo-setup.js and may be connected before this script runs (the
  // browser handles its frames while it waits for this file): that change was not seen.
  connectionIs(pusher.connection.state);
  pusher.signin();
  show();
})();
