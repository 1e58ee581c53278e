/**
 * Every workflow's first line of defence (registered in the bundle as a workflow interceptor module): a payload the
 * codec could not authenticate reaches the workflow as a marker (domain/payload-guard.ts), and here
 * - a workflow started with one (or with no input at all) fails at once, not retryable, naming the cause: its code never runs;
 * - a signal carrying one, or without the argument every FleetTools signal but `agentHeartbeat` has, is dropped;
 * - a query or an update carrying one is refused (the update's validator rejects it: nothing enters history).
 * FleetTools' own payloads never are markers, so none of this issues a command on their path: recorded histories
 * replay unchanged. The methods are not async, on purpose: an async wrapper would delay each handler by a microtask,
 * which reorders commands against a handler's in the same workflow task (coordination.json caught it).
 */
import { ApplicationFailure, log, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import {
  firstUnauthenticated,
  SIGNALS_WITHOUT_ARGS,
  UNAUTHENTICATED_PAYLOAD_FAILURE,
  unauthenticatedMessage,
} from '../domain/payload-guard';

const refuse = (what: string, reason: string) =>
  ApplicationFailure.create({ message: unauthenticatedMessage(what, reason), type: UNAUTHENTICATED_PAYLOAD_FAILURE, nonRetryable: true });

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      execute(input, next) {
        const reason = input.args.length === 0 ? 'the workflow has no input' : firstUnauthenticated(input.args);
        if (reason !== undefined) return Promise.reject(refuse("the workflow's input", reason));
        return next(input);
      },
      handleSignal(input, next) {
        const reason =
          input.args.length === 0 && !SIGNALS_WITHOUT_ARGS.includes(input.signalName)
            ? 'the signal has no argument'
            : firstUnauthenticated(input.args);
        if (reason !== undefined) {
          log.warn(unauthenticatedMessage(`signal ${input.signalName}`, reason));
          return Promise.resolve();
        }
        return next(input);
      },
      validateUpdate(input, next) {
        const reason = firstUnauthenticated(input.args);
        if (reason !== undefined) throw refuse(`update ${input.name}`, reason);
        next(input);
      },
      handleUpdate(input, next) {
        const reason = firstUnauthenticated(input.args);
        if (reason !== undefined) return Promise.reject(refuse(`update ${input.name}`, reason));
        return next(input);
      },
      handleQuery(input, next) {
        const reason = firstUnauthenticated(input.args);
        if (reason !== undefined) return Promise.reject(refuse(`query ${input.queryName}`, reason));
        return next(input);
      },
    },
  ],
});
