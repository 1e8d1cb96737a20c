// A Workers sample in the older service-worker syntax, as such samples are written: plain
// JavaScript, a global `fetch` listener, variables as globals. Built with `isola build` unchanged.

addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.pathname.endsWith('/no-respond')) return; // a listener that forgets respondWith: 500
  event.waitUntil(Promise.resolve().then(() => console.log('sw waitUntil ran')));
  event.respondWith(handleRequest(event.request));
});

async function handleRequest(request) {
  const url = new URL(request.url);
  const body = request.method === 'POST' ? await request.text() : '';
  // eslint-disable-next-line no-undef
  const greeting = typeof GREETING === 'undefined' ? 'no greeting' : GREETING;
  return new Response(`Hello worker! ${request.method} ${url.pathname} ${greeting}${body ? ` ${body}` : ''}\n`, {
    headers: { 'content-type': 'text/plain' },
  });
}
