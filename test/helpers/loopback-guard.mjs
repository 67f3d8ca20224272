// Preloaded into every wid the tests spawn (NODE_OPTIONS=--import): any connection to an address
// other than the loopback fails at once and is reported on stderr, so a test can prove that nothing
// (an SDK's metadata probe, instance discovery, a telemetry call) left 127.0.0.1.
import net from 'node:net';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;
const connect = net.Socket.prototype.connect;

net.Socket.prototype.connect = function guardedConnect(...args) {
  // net.connect() and the http agents call socket.connect([options, callback]) (already normalised);
  // direct callers pass (options), (port, host) or (path).
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const opts =
    typeof first === 'object' && first !== null
      ? first
      : typeof first === 'string' && !/^\d+$/.test(first)
        ? { path: first }
        : { port: first, host: typeof args[1] === 'string' ? args[1] : undefined };
  const host = opts.host ?? 'localhost';
  // An IPC socket has a path and no port (the https agent's options also carry the request's path).
  const ipc = typeof opts.path === 'string' && opts.port === undefined && opts.host === undefined;
  if (!ipc && !LOOPBACK.test(String(host))) {
    process.stderr.write(`wid-test: blocked connection to ${host}:${opts.port}\n`);
    const err = Object.assign(new Error(`wid-test: connection to ${host} blocked (tests stay on 127.0.0.1)`), { code: 'ECONNREFUSED' });
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};
