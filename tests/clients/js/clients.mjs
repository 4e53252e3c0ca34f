// The operations the client drivers run: real pusher-js and laravel-echo clients, each known by
// a name, reporting what they see through `report(client, type, fields)`. No Node or browser API
// of its own: driver.mjs runs these in Node, browser_driver.mjs in a Chromium page, with the
// libraries each loads its own way.
const CONNECT_TIMEOUT_MS = 15000;

// `Echo` and `Pusher` are the libraries' classes, `installResume` @resound/resume's entry point.
export function createOps({ Echo, Pusher, installResume, report }) {
  const clients = new Map();

  // pusher-js hands presence callbacks its Members object; keep the parts a test can compare.
  const plain = (data) =>
    data && typeof data.each === 'function' && data.members
      ? { count: data.count, me: data.me, members: data.members }
      : data;

  function waitConnected(name, pusher) {
    const { connection } = pusher;
    if (connection.state === 'connected') return Promise.resolve(connection.socket_id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name}: not connected after ${CONNECT_TIMEOUT_MS} ms ` +
          `(state ${connection.state}); is the broadcaster listening?`)),
        CONNECT_TIMEOUT_MS,
      );
      connection.bind('connected', () => {
        clearTimeout(timer);
        resolve(connection.socket_id);
      });
    });
  }

  function watchConnection(name, pusher) {
    pusher.connection.bind('state_change', ({ previous, current }) =>
      report(name, 'state', { previous, current }));
    pusher.connection.bind('error', (error) =>
      report(name, 'connection_error', { data: error?.data ?? null }));
    pusher.connection.bind('message', ({ event }) => {
      if (event === 'pusher:pong') report(name, 'pong');
    });
  }

  // With `resume`, the client goes through @resound/resume (clients/js), which reports what it did
  // per channel. Its hook wraps pusher-js's socket factory for this whole process from then on.
  function withResume(name, resume, create) {
    const hook = resume ? installResume(Pusher) : null;
    const pusher = create();
    hook?.track(pusher, {
      resumed: (channel, data) => report(name, 'resumed', { channel, data }),
      failed: (channel, data) => report(name, 'failed', { channel, data }),
    });
    return pusher;
  }

  function client(name) {
    const found = clients.get(name);
    if (!found) throw new Error(`no client named ${name}; create it with 'echo' or 'pusher' first`);
    return found;
  }

  // Echo's channel object for kind 'channel' | 'private' | 'join', wired to report its lifecycle
  // once.
  function echoChannel(name, kind, channelName) {
    const entry = client(name);
    if (!entry.echo) throw new Error(`${name} is a bare pusher-js client, not an Echo client`);
    const pick = { channel: 'channel', private: 'private', join: 'join' }[kind];
    if (!pick) throw new Error(`unknown channel kind ${kind}; use channel, private or join`);
    const channel = entry.echo[pick](channelName);
    if (!entry.wired.has(channel.name)) {
      entry.wired.add(channel.name);
      const at = { channel: channel.name };
      channel.subscribed(() => report(name, 'subscribed', at));
      channel.error((data) => report(name, 'error', { ...at, data }));
      if (kind === 'join') {
        channel.here((users) => report(name, 'here', { ...at, data: users }));
        channel.joining((user) => report(name, 'joining', { ...at, data: user }));
        channel.leaving((user) => report(name, 'leaving', { ...at, data: user }));
      }
    }
    return channel;
  }

  function bareChannel(name, channelName) {
    const { pusher } = client(name);
    const channel = pusher.channel(channelName);
    if (!channel) throw new Error(`${name} is not subscribed to ${channelName}`);
    return channel;
  }

  const ops = {
    async echo({ client: name, options, resume }) {
      // Echo's default `auth` and `userAuthentication` objects are shared by every instance in one
      // JavaScript realm, so a second client's bearerToken would overwrite the first's. Each
      // browser page has its own realm; give each client here its own objects to match.
      let echo;
      const pusher = withResume(name, resume, () => {
        echo = new Echo({
          auth: { headers: {} },
          userAuthentication: { endpoint: '/broadcasting/user-auth', headers: {} },
          ...options,
          Pusher,
        });
        return echo.connector.pusher;
      });
      clients.set(name, { echo, pusher, wired: new Set() });
      watchConnection(name, pusher);
      return waitConnected(name, pusher);
    },
    async pusher({ client: name, key, options, resume }) {
      const pusher = withResume(name, resume, () => new Pusher(key, options));
      clients.set(name, { pusher });
      watchConnection(name, pusher);
      return waitConnected(name, pusher);
    },
    // User sign-in (pusher:signin); resolves once the user's #server-to-user channel is live.
    async signin({ client: name }) {
      const { echo, pusher } = client(name);
      const { user } = pusher;
      user.bind_global((event, data) => report(name, 'user_event', { name: event, data }));
      const refused = new Promise((_, reject) =>
        user.bind('pusher:signin_error', (error) =>
          reject(new Error(`signin refused: ${JSON.stringify(error)}`))));
      if (echo) echo.connector.signin();
      else pusher.signin();
      await Promise.race([user.signinDonePromise, refused]);
      const channel = user.serverToUserChannel;
      if (!channel.subscribed) {
        await new Promise((resolve, reject) => {
          channel.bind('pusher:subscription_succeeded', resolve);
          pusher.connection.bind('error', (error) => reject(new Error(
            `pusher-js subscribes to ${channel.name} after signin; the server answered ` +
            JSON.stringify(error?.data ?? error))));
        });
      }
      return user.user_data;
    },
    // Report the signed-in user's watchlist events (bind before signin: the state comes with it).
    watch({ client: name }) {
      const { watchlist } = client(name).pusher.user;
      for (const event of ['online', 'offline']) {
        watchlist.bind(event, (data) => report(name, 'watchlist', { name: event, data }));
      }
      return true;
    },
    subscriptionCount({ client: name, channel }) {
      return bareChannel(name, channel).subscriptionCount;
    },
    subscribe({ client: name, kind, channel }) {
      const entry = client(name);
      if (entry.echo) return echoChannel(name, kind, channel).name;
      const subscription = entry.pusher.subscribe(channel);
      subscription.bind_global((event, data) =>
        report(name, 'event', { channel, name: event, data: plain(data) }));
      return channel;
    },
    listen({ client: name, kind, channel, event }) {
      const echoed = echoChannel(name, kind, channel);
      echoed.listen(event, (data) =>
        report(name, 'event', { channel: echoed.name, name: event, data }));
      return echoed.name;
    },
    listenForWhisper({ client: name, kind, channel, event }) {
      const echoed = echoChannel(name, kind, channel);
      echoed.listenForWhisper(event, (data) =>
        report(name, 'whisper', { channel: echoed.name, name: event, data }));
      return echoed.name;
    },
    whisper({ client: name, kind, channel, event, data }) {
      echoChannel(name, kind, channel).whisper(event, data);
      return true;
    },
    bind({ client: name, channel, event }) {
      bareChannel(name, channel).bind(event, (data, metadata) =>
        report(name, 'bound', { channel, name: event, data, metadata: metadata ?? null }));
      return true;
    },
    trigger({ client: name, channel, event, data }) {
      return bareChannel(name, channel).trigger(event, data);
    },
    leave({ client: name, channel }) {
      const entry = client(name);
      if (entry.echo) {
        entry.echo.leave(channel);
        // Echo forgets its channel objects, so a later join gets fresh ones to wire up.
        for (const prefix of ['', 'private-', 'presence-']) entry.wired.delete(prefix + channel);
      } else {
        entry.pusher.unsubscribe(channel);
      }
      return true;
    },
    disconnect({ client: name }) {
      client(name).pusher.disconnect();
      clients.delete(name);
      return true;
    },
    // Connect again after the server closed the socket for good (pusher-js then waits).
    connect({ client: name }) {
      const { pusher } = client(name);
      pusher.connect();
      return waitConnected(name, pusher);
    },
  };

  // Disconnect every client (the driver is closing).
  const disconnectAll = () => {
    for (const { pusher } of clients.values()) pusher.disconnect();
  };
  return { ops, disconnectAll };
}
