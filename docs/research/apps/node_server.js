// Node net/http server on the inherited fd 3 (LISTEN_FDS), optional SLOW_START ms of synchronous work first.
const http = require('http');
const slow = Number(process.env.SLOW_START || 0);
const until = Date.now() + slow; while (Date.now() < until) {}
const server = http.createServer((req, res) => res.end('ok\n'));
server.listen({ fd: 3 });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
