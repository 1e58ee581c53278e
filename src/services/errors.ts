/**
 * The service layer's errors, told apart by class, never by message: the API answers each with its HTTP
 * status (api/errors.ts), the CLI and the worker read the same classes. `code` is the stable name clients see.
 */
import type { z } from 'zod';

export interface FieldProblem {
  field: string;
  message: string;
}

export abstract class FleetError extends Error {
  abstract readonly code: string;

  constructor(
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The request itself is wrong: `details.fields` names each bad field. */
export class InvalidRequestError extends FleetError {
  override name = 'InvalidRequestError';
  readonly code = 'invalid_request';
}

export class UnauthorizedError extends FleetError {
  override name = 'UnauthorizedError';
  readonly code = 'unauthorized';
}

/** The caller is known but may not do this (an agent token outside its own routes). */
export class ForbiddenError extends FleetError {
  override name = 'ForbiddenError';
  readonly code = 'forbidden';
}

export class NotFoundError extends FleetError {
  override name = 'NotFoundError';
  readonly code = 'not_found';
}

/** The request is fine but the state refuses it (already ended, lock held, mailbox full, key reused). */
export class ConflictError extends FleetError {
  override name = 'ConflictError';
  readonly code = 'conflict';
}

/** One entry of the request is larger than the route takes (413): the message names the limit. */
export class TooLargeError extends FleetError {
  override name = 'TooLargeError';
  readonly code = 'payload_too_large';
}

/** A quota is used up (429): a holder's, a sender's, a recipient's, a mission's or everyone's; the message names it. */
export class QuotaExceededError extends FleetError {
  override name = 'QuotaExceededError';
  readonly code = 'quota_exceeded';
}

/**
 * The request is fine but cannot be carried out now (no worker, Temporal or a store cannot do its job); `code`
 * says which, for instance `checkpoint_store_full`. `insufficientStorage` marks a full disk.
 */
export class UnavailableError extends FleetError {
  override name = 'UnavailableError';

  constructor(
    message: string,
    readonly code: string = 'unavailable',
    readonly insufficientStorage = false,
  ) {
    super(message);
  }
}

/** An error and the causes under it, outermost first; at most `max` of them (a chain may loop). */
export function* causes(err: unknown, max = 5): Generator<unknown> {
  for (let e = err, depth = 0; e !== null && e !== undefined && depth < max; depth++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}

export const notFound = (what: string) => new NotFoundError(`${what} does not exist`);
export const conflict = (message: string, details?: unknown) => new ConflictError(message, details);

/** zod issues of the request's `where` part, each bad field named. */
export function invalid(where: string, error: z.ZodError): InvalidRequestError {
  const fields: FieldProblem[] = error.issues.map((i) => ({ field: [where, ...i.path].join('.'), message: i.message }));
  return new InvalidRequestError(`invalid ${where}: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, { fields });
}
