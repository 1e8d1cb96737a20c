// workerd peer: a JS module worker answering a short text/plain greeting.
const body = 'hello from workerd\n';
export default {
  fetch() {
    return new Response(body, { headers: { 'content-type': 'text/plain' } });
  },
};
