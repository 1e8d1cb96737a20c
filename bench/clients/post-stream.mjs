// Streams `bytes` of request body to `url` (POST, content-length set, 1 MiB chunks with
// backpressure) while reading the echoed response; prints one JSON line with the result.
//   node bench/clients/post-stream.mjs URL BYTES
import http from 'node:http';

const [url, bytesArg] = process.argv.slice(2);
const total = Number(bytesArg);
const chunk = Buffer.alloc(1 << 20, 'isola-bench-0123456789abcdef\n');
const t0 = process.hrtime.bigint();
let received = 0;
let firstByteUs = null;
const req = http.request(url, {
  method: 'POST',
  headers: { 'content-type': 'application/octet-stream', 'content-length': String(total) },
});
req.on('response', (res) => {
  res.on('data', (d) => {
    if (firstByteUs === null) firstByteUs = Number(process.hrtime.bigint() - t0) / 1000;
    received += d.length;
  });
  res.on('end', () => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(JSON.stringify({ status: res.statusCode, sent: total, received, seconds, firstByteUs }) + '\n');
  });
  res.on('error', (e) => {
    process.stdout.write(JSON.stringify({ status: res.statusCode, error: e.message, sent: total, received }) + '\n');
  });
});
req.on('error', (e) => {
  process.stdout.write(JSON.stringify({ error: e.message, sent: total, received }) + '\n');
});
let sent = 0;
function pump() {
  while (sent < total) {
    const n = Math.min(chunk.length, total - sent);
    sent += n;
    if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
      req.once('drain', pump);
      return;
    }
  }
  req.end();
}
pump();
