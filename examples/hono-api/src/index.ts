/**
 * hono-api: a small JSON API written with Hono, routed inside the guest. The Hono app is the
 * module's default export, unchanged from how it would run on Cloudflare Workers or Deno.
 *
 * Routes live under /api (see isola.toml):
 *   GET    /api                → index of the routes
 *   GET    /api/todos          → every todo (?done=true|false filters)
 *   POST   /api/todos          → create one from {"title": "…"}; 201 + Location
 *   GET    /api/todos/:id      → one todo, or 404
 *   PATCH  /api/todos/:id      → update title/done
 *   DELETE /api/todos/:id      → 204
 *   GET    /api/whoami         → the request as the function saw it
 *
 * State lives in the instance's memory: it is per sandbox and lost when the sandbox is replaced,
 * which is fine for a demo and exactly what a real function must not rely on.
 */
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Env } from '@isola/sdk';

interface Todo {
  id: number;
  title: string;
  done: boolean;
}

const todos = new Map<number, Todo>();
let nextId = 1;

/** Reads and validates a JSON object body, or answers 400. */
async function jsonBody(req: Request): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    throw new HTTPException(400, { message: 'the body must be JSON' });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HTTPException(400, { message: 'the body must be a JSON object' });
  }
  return body as Record<string, unknown>;
}

function todoId(param: string): number {
  const id = Number(param);
  if (!Number.isInteger(id) || !todos.has(id)) throw new HTTPException(404, { message: `no todo ${param}` });
  return id;
}

const app = new Hono<{ Bindings: Env }>().basePath('/api');

app.get('/', (c) =>
  c.json({
    routes: ['GET /api/todos', 'POST /api/todos', 'GET /api/todos/:id', 'PATCH /api/todos/:id', 'DELETE /api/todos/:id', 'GET /api/whoami'],
  }),
);

app.get('/todos', (c) => {
  const done = c.req.query('done');
  const list = [...todos.values()].filter((t) => done === undefined || String(t.done) === done);
  return c.json(list);
});

app.post('/todos', async (c) => {
  const body = await jsonBody(c.req.raw);
  if (typeof body.title !== 'string' || body.title.trim() === '') {
    throw new HTTPException(400, { message: '"title" must be a non-empty string' });
  }
  const todo: Todo = { id: nextId++, title: body.title.trim(), done: false };
  todos.set(todo.id, todo);
  c.header('location', `/api/todos/${todo.id}`);
  return c.json(todo, 201);
});

app.get('/todos/:id', (c) => c.json(todos.get(todoId(c.req.param('id')))));

app.patch('/todos/:id', async (c) => {
  const todo = todos.get(todoId(c.req.param('id')))!;
  const body = await jsonBody(c.req.raw);
  if (body.title !== undefined) {
    if (typeof body.title !== 'string') throw new HTTPException(400, { message: '"title" must be a string' });
    todo.title = body.title;
  }
  if (body.done !== undefined) {
    if (typeof body.done !== 'boolean') throw new HTTPException(400, { message: '"done" must be true or false' });
    todo.done = body.done;
  }
  return c.json(todo);
});

app.delete('/todos/:id', (c) => {
  todos.delete(todoId(c.req.param('id')));
  return c.body(null, 204);
});

app.get('/whoami', (c) =>
  c.json({
    method: c.req.method,
    url: c.req.url,
    userAgent: c.req.header('user-agent') ?? null,
    env: Object.keys(c.env),
  }),
);

app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

app.onError((err, c) => {
  if (err instanceof HTTPException) return c.json({ error: err.message }, err.status);
  console.error('unhandled error', err);
  return c.json({ error: 'internal error' }, 500);
});

export default app;
