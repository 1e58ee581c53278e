/** One error shape for every route: `{error: {code, message, details?}}`. */
import type { ErrorRequestHandler } from 'express';
import { z } from 'zod';
import { log } from '../logger';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} does not exist`);
export const conflict = (message: string, details?: unknown) => new ApiError(409, 'conflict', message, details);

/** zod issues -> 400 naming each bad field. */
export function invalid(where: 'body' | 'query' | 'params', error: z.ZodError): ApiError {
  const fields = error.issues.map((i) => ({ field: [where, ...i.path].join('.'), message: i.message }));
  return new ApiError(400, 'invalid_request', `invalid ${where}: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, { fields });
}

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  if (err instanceof ApiError) {
    res.status(err.status).json({ error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } });
    return;
  }
  // body-parser errors carry an HTTP status (400 bad JSON, 413 too large, 415 wrong charset).
  const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
  if (status < 500) {
    const code = status === 413 ? 'payload_too_large' : 'invalid_request';
    res.status(status).json({ error: { code, message: status === 413 ? 'request body is too large' : `invalid request: ${err.message}` } });
    return;
  }
  log.error('request failed', { method: req.method, path: req.path, error: (err as Error)?.message });
  res.status(503).json({ error: { code: 'unavailable', message: `the server could not complete the request: ${(err as Error)?.message ?? 'unknown error'}` } });
};
