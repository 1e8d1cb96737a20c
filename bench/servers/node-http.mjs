// The ceiling: a plain node:http server. `hello` answers 200 text/plain with a short body;
// `echo` streams the request body back. Prints `listening on http://HOST:PORT`.
//   node bench/servers/node-http.mjs hello|echo
import { createServer } from 'node:http';

const mode = process.argv[2] ?? 'hello';
const body = Buffer.from('hello from node\n');
const server = createServer(
  mode === 'echo'
    ? (req, res) => {
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
        req.pipe(res);
      }
    : (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(body);
      },
);
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
