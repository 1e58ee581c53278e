/**
 * Every route is declared once, with zod schemas for its params, query, body and responses. The
 * same declaration validates requests, authorises them and generates the OpenAPI document, so
 * the document and the server cannot disagree.
 */
import { PROTOTYPE_KEYS } from '../domain/agent';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { ApiError } from './errors';
import { ForbiddenError, invalid, InvalidRequestError } from '../services/errors';
import type { Authenticator, Caller } from './auth';

/** The body a route takes when its spec names no limit: what spawns and missions need. */
export const DEFAULT_BODY_LIMIT = 256 * 1024;
/** The body of a route whose body is an empty object (`{}`). */
export const EMPTY_BODY_LIMIT = 1024;

export type Method = 'get' | 'post' | 'delete';

/** Who may call a route: the admin token only; also the scoped token of the agent named by `:id`; also any agent's token (the handler checks what it may touch). */
export type Access = 'admin' | 'admin-or-own-agent' | 'admin-or-agent' | 'public';

export interface RouteSpec {
  method: Method;
  path: string;
  summary: string;
  access: Access;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /**
   * The largest body the route reads, in bytes (a larger one is a 413, refused before it is read). Default: 1 KiB
   * for an empty-object body, else the registry's default (DEFAULT_BODY_LIMIT). A route without `body` reads none.
   */
  bodyLimit?: number;
  /** Status -> response body schema (JSON), and/or the schema of each event of a `text/event-stream`. */
  responses: Record<number, { description: string; schema?: z.ZodType; stream?: z.ZodType }>;
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  caller: Caller;
  req: Request;
  res: Response;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export class RouteRegistry {
  readonly specs: RouteSpec[] = [];
  readonly router = Router();

  constructor(
    private readonly auth: Authenticator,
    private readonly defaultBodyLimit = DEFAULT_BODY_LIMIT,
  ) {}

  /**
   * Registers a route. The handler returns `[status, body]` to answer with JSON, or undefined when
   * it wrote the response itself (a stream).
   */
  add<S extends RouteSpec>(
    spec: S,
    handler: (input: RouteInput<Out<S['params']>, Out<S['query']>, Out<S['body']>>) => Promise<[number, unknown] | undefined>,
  ): void {
    const bodyLimit = spec.body ? (spec.bodyLimit ?? (isEmptyObject(spec.body) ? EMPTY_BODY_LIMIT : this.defaultBodyLimit)) : 0;
    this.specs.push({ ...spec, ...(spec.body ? { bodyLimit } : {}) });
    const parseJson = express.json({ limit: bodyLimit, strict: true });
    this.router[spec.method](spec.path, (req, res, next) => {
      (async () => {
        // Who calls, and whether they may call this route, before a byte of the body is read: a request refused
        // here is answered at once and its connection closed (errors.ts), whatever body it announced.
        const caller = this.auth.authenticate(req, spec.access);
        const params = spec.params ? check(spec.params, req.params, 'params') : undefined;
        if (
          spec.access === 'admin-or-own-agent' &&
          caller.kind === 'agent' &&
          (params as { id?: string } | undefined)?.id !== caller.agentId
        ) {
          throw new ForbiddenError(`this agent token belongs to ${caller.agentId} and cannot act on another agent`);
        }
        await this.auth.requireRunning(caller);
        const query = spec.query ? check(spec.query, req.query, 'query') : undefined;
        const body = spec.body ? await readBody(spec.body, parseJson, req, res) : undefined;
        const out = await handler({ params, query, body, caller, req, res } as RouteInput<
          Out<S['params']>,
          Out<S['query']>,
          Out<S['body']>
        >);
        if (out) res.status(out[0]).json(out[1]);
      })().catch(next);
    });
  }
}

const isEmptyObject = (s: z.ZodType) => s instanceof z.ZodObject && Object.keys(s.shape).length === 0;

/** The route's JSON body (at most its limit), checked against its schema. */
async function readBody<S extends z.ZodType>(schema: S, parseJson: RequestHandler, req: Request, res: Response): Promise<z.output<S>> {
  await new Promise<void>((resolve, reject) => parseJson(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
  if (req.body === undefined && Number(req.get('content-length') ?? 0) > 0) {
    throw new ApiError(415, 'unsupported_media_type', 'send the body as JSON with "Content-Type: application/json"');
  }
  refusePrototypeKeys(req.body);
  return check(schema, req.body ?? {}, 'body');
}

/**
 * A 400 naming the first `__proto__`, `constructor` or `prototype` key anywhere in a body: a record (env, say) would
 * drop it silently or take it as its prototype. Iterative, so that deeply nested bodies cannot overflow the stack.
 */
function refusePrototypeKeys(body: unknown): void {
  type Node = { value: unknown; key: string | number | null; parent: Node | null };
  const stack: Node[] = [{ value: body, key: null, parent: null }];
  while (stack.length) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: node });
      continue;
    }
    for (const key of Object.keys(v)) {
      if (PROTOTYPE_KEYS.includes(key)) {
        const path: (string | number)[] = [key];
        for (let n: Node | null = node; n && n.key !== null; n = n.parent) path.unshift(n.key);
        const field = ['body', ...path].join('.');
        const message = `"${key}" is not allowed as a key (an object built from it would drop it or take it as its prototype)`;
        throw new InvalidRequestError(`invalid body: ${field}: ${message}`, { fields: [{ field, message }] });
      }
      stack.push({ value: (v as Record<string, unknown>)[key], key, parent: node });
    }
  }
}

function check<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'params'): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw invalid(where, r.error);
  return r.data;
}
