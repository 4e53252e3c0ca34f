// The drivers' side of the line protocol with pytest (tests/clients/driver.py): stdin carries one
// JSON command per line, {id, op, client, ...}; stdout one JSON line per reply ({reply: id, ok,
// value} or {reply: id, ok: false, error}) and one per thing a client saw ({event: {client, type,
// channel, name, data}}). Logging goes to stderr, so stdout holds nothing but this protocol.
import readline from 'node:readline';

for (const level of ['log', 'info', 'warn', 'debug']) console[level] = console.error;

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

export const report = (client, type, fields = {}) => send({ event: { client, type, ...fields } });

// Run `run(command)` for each command and reply with its value; when stdin closes, await
// `close()` and exit.
export function serve(run, close) {
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', async (line) => {
    if (!line.trim()) return;
    const command = JSON.parse(line);
    try {
      send({ reply: command.id, ok: true, value: (await run(command)) ?? null });
    } catch (error) {
      send({ reply: command.id, ok: false, error: String(error?.message ?? error) });
    }
  });
  input.on('close', async () => {
    await close();
    process.exit(0);
  });
}
