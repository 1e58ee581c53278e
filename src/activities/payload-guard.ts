/**
 * The activities' guard (a worker's activity interceptor): an activity whose input or previous heartbeat details
 * the codec could not authenticate (domain/payload-guard.ts) fails at once, not retryable, naming the cause, and
 * runs nothing. FleetTools' workflows only schedule activities with payloads they encrypted; this stops a task
 * forged by anyone else who reaches the task queue.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import {
  firstUnauthenticated,
  UNAUTHENTICATED_PAYLOAD_FAILURE,
  unauthenticatedMessage,
  unauthenticatedReason,
} from '../domain/payload-guard';

export const payloadGuardActivityInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const hb = unauthenticatedReason(ctx.info.heartbeatDetails);
      const reason = firstUnauthenticated(input.args) ?? (hb !== undefined ? `heartbeat details: ${hb}` : undefined);
      if (reason !== undefined)
        throw ApplicationFailure.create({
          message: unauthenticatedMessage(`activity ${ctx.info.activityType}`, reason),
          type: UNAUTHENTICATED_PAYLOAD_FAILURE,
          nonRetryable: true,
        });
      return next(input);
    },
  },
});
