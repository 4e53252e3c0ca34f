// A lost live connection, made visible: after PAUSE_AFTER_MS without it (pusher-js's connection
// state is anything but "connected"), a banner says that updates are paused and since when, and
// the "who is here" panels grey out (body[data-live="paused"], see app.css). Both go when the
// connection is back. Resound.live.pausedNote(who) is what an action made meanwhile adds to its
// message: who will see the change once the connection is back.
(function () {
  'use strict';
  const PAUSE_AFTER_MS = 5000;
  const pusher = window.Echo.connector.pusher;
  const el = window.Resound.element;
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
  const banner = el('div', null, { id: 'paused', class: 'paused', role: 'status', hidden: '' });
  const since = el('time');
  banner.append(el('strong', 'Live updates are paused.'), ' No connection since ', since,
                '. Changes made meanwhile will show here once the connection is back.');
  document.getElementById('messages').before(banner);
  let lostAt = null;
  let timer = null;

  function signedOut() {
    return !document.getElementById('signed-out').hidden;
  }

  function pause() {
    timer = null;
    if (signedOut()) return;  // that banner says more, and the page will not reconnect
    since.dateTime = lostAt.toISOString();
    since.textContent = clock.format(lostAt);
    banner.hidden = false;
    document.body.dataset.live = 'paused';
  }

  function follow(state) {
    if (state === 'connected') {
      clearTimeout(timer);
      timer = null;
      lostAt = null;
      banner.hidden = true;
      delete document.body.dataset.live;
    } else if (lostAt === null) {
      lostAt = new Date();
      timer = setTimeout(pause, PAUSE_AFTER_MS);
    }
  }

  function pausedNote(who) {
    if (banner.hidden) return '';
    return ' Live updates are paused: ' + who + ' will see it when the connection is back.';
  }

  pusher.connection.bind('state_change', function (states) { follow(states.current); });
  follow(pusher.connection.state);
  window.Resound.live.pausedNote = pausedNote;
})();
