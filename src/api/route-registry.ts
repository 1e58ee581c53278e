/**
 * Every route is declared once, with zod schemas for its params, query, body and responses. The
 * same declaration validates requests, authorises them and generates the OpenAPI document, so
 * the document and the server cannot disagree.
 */
import { Router, type Request, type Response } from 'express';
import { type z } from 'zod';
import { ApiError } from './errors';
import { ForbiddenError, invalid } from '../services/errors';
import type { Authenticator, Caller } from './auth';

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

  constructor(private readonly auth: Authenticator) {}

  /**
   * Registers a route. The handler returns `[status, body]` to answer with JSON, or undefined when
   * it wrote the response itself (a stream).
   */
  add<S extends RouteSpec>(
    spec: S,
    handler: (input: RouteInput<Out<S['params']>, Out<S['query']>, Out<S['body']>>) => Promise<[number, unknown] | undefined>,
  ): void {
    this.specs.push(spec);
    this.router[spec.method](spec.path, (req, res, next) => {
      (async () => {
        const caller = this.auth.authenticate(req, spec.access);
        const params = spec.params ? check(spec.params, req.params, 'params') : undefined;
        if (
          spec.access === 'admin-or-own-agent' &&
          caller.kind === 'agent' &&
          (params as { id?: string } | undefined)?.id !== caller.agentId
        ) {
          throw new ForbiddenError(`this agent token belongs to ${caller.agentId} and cannot act on another agent`);
        }
        const query = spec.query ? check(spec.query, req.query, 'query') : undefined;
        let body: unknown;
        if (spec.body) {
          if (req.body === undefined && Number(req.get('content-length') ?? 0) > 0) {
            throw new ApiError(415, 'unsupported_media_type', 'send the body as JSON with "Content-Type: application/json"');
          }
          body = check(spec.body, req.body ?? {}, 'body');
        }
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

function check<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'params'): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw invalid(where, r.error);
  return r.data;
}
