/**
 * Installing what agents' sandboxes need (bubblewrap, passt) from Debian's packages, as the Temporal CLI is built:
 * `fleet setup` and `fleet up` do it on a host that lacks them, when they run as root on a host with apt-get.
 * Where that cannot be done, the error says what to install (a spawn says it again, see sandbox.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SandboxUnavailable, sandboxTools } from './sandbox';

const PACKAGES = ['bubblewrap', 'passt', 'iproute2', 'util-linux'];
const APT = '/usr/bin/apt-get';

function aptGet(args: string[]): Promise<void> {
  return new Promise((resolveRun, rejectRun) => {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFile(APT, args, { env, timeout: 600_000, maxBuffer: 64 << 20 }, (err, _out, stderr) =>
      err ? rejectRun(new Error(`apt-get ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-3).join('; ')}`)) : resolveRun(),
    );
  });
}

/** The sandbox's commands, installed first when missing and this process may; what was done, for the caller to print. */
export async function ensureSandboxPackages(): Promise<{ installed: boolean }> {
  try {
    sandboxTools();
    return { installed: false };
  } catch (err) {
    if (!(err instanceof SandboxUnavailable) || process.getuid?.() !== 0 || !existsSync(APT)) throw err;
  }
  try {
    await aptGet(['install', '-y', '--no-install-recommends', ...PACKAGES]);
  } catch {
    // A fresh machine's package lists may be missing or stale.
    await aptGet(['update']);
    await aptGet(['install', '-y', '--no-install-recommends', ...PACKAGES]);
  }
  sandboxTools();
  return { installed: true };
}
