/** One error shape for every route: `{error: {code, message, details?}}`, with the status each error class stands for. */
import type { ErrorRequestHandler } from 'express';
import { log } from '../logs/logger';
import {
  causes,
  ConflictError,
  FleetError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  QuotaExceededError,
  TooLargeError,
  UnauthorizedError,
  UnavailableError,
} from '../services/errors';

/** An error only HTTP has (a method a route does not take, a body that is not JSON), with its status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status of each service error class. */
export function statusOf(err: FleetError): number {
  if (err instanceof InvalidRequestError) return 400;
  if (err instanceof UnauthorizedError) return 401;
  if (err instanceof ForbiddenError) return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof TooLargeError) return 413;
  if (err instanceof QuotaExceededError) return 429;
  // 507 Insufficient Storage: only writes get it, and they work again once there is space.
  if (err instanceof UnavailableError) return err.insufficientStorage ? 507 : 503;
  return 500;
}

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  // A request refused before its body was read (no token, no such route, too large): the connection is closed after
  // the answer, rather than kept alive, which would make Node read (and drop) the rest of whatever body was announced.
  if (!req.complete) res.set('Connection', 'close');
  if (err instanceof FleetError) {
    res
      .status(statusOf(err))
      .json({ error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } });
    return;
  }
  if (err instanceof ApiError) {
    res.status(err.status).json({ error: { code: err.code, message: err.message } });
    return;
  }
  // body-parser errors carry an HTTP status (400 bad JSON, 413 too large, 415 wrong charset).
  const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
  if (status < 500) {
    const code = status === 413 ? 'payload_too_large' : 'invalid_request';
    res.status(status).json({ error: { code, message: status === 413 ? 'request body is too large' : `invalid request: ${err.message}` } });
    return;
  }
  const temporal = temporalUnreachable(err);
  if (temporal) {
    log.warn('Temporal unreachable', { method: req.method, path: req.path, error: temporal });
    res.status(503).json({
      error: {
        code: 'temporal_unavailable',
        message: `Temporal is unreachable (${temporal}), so the request may not have been carried out: retry it when Temporal is back (a spawn with the same Idempotency-Key starts nothing twice); check \`fleet up\` or TEMPORAL_ADDRESS`,
      },
    });
    return;
  }
  log.error('request failed', { method: req.method, path: req.path, error: (err as Error)?.message });
  res.status(503).json({
    error: { code: 'unavailable', message: `the server could not complete the request: ${(err as Error)?.message ?? 'unknown error'}` },
  });
};

/** gRPC UNAVAILABLE (14) or DEADLINE_EXCEEDED (4) anywhere in the error's cause chain: Temporal did not answer. */
function temporalUnreachable(err: unknown): string | null {
  for (const cause of causes(err)) {
    const e = cause as { code?: unknown; details?: unknown; message?: unknown };
    if (e.code === 14 || e.code === 4) return String(e.details || e.message || (e.code === 14 ? 'unavailable' : 'deadline exceeded'));
  }
  return null;
}
