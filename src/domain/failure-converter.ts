/**
 * The failure converter of every FleetTools client and worker (the workers' workflow bundle too, through its path):
 * failure messages and stack traces go into an encoded payload, so the payload codec encrypts them like any other
 * payload (an agent's last error can quote its output). Loaded by path (`failureConverter` export) in the sandbox.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
