/**
 * What an agent's sandbox lets it see and do beyond its own working directory (fleet.config.json
 * `roles.<type>.sandbox`). Every agent runs sandboxed unless its role says `"none"`, which is logged at
 * each spawn. Pure zod: no Node imports.
 */
import { z } from 'zod';

const AbsolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.split('/').includes('..'), { message: 'must be an absolute path without ".."' });

export const SandboxOptions = z
  .object({
    /** Host paths the agent may read (they are visible read-only even where the sandbox hides their parent, as /tmp). */
    readOnly: z.array(AbsolutePath).max(50).default([]),
    /** Host paths the agent may write, besides its working directory or worktree. */
    writable: z.array(AbsolutePath).max(50).default([]),
    /** Outbound network (model APIs, package registries); false leaves only the FleetTools API and `hostPorts`. */
    network: z.boolean().default(true),
    /** Ports on the host's loopback the agent may reach at 127.0.0.1 (a model server or proxy such as Ollama or LiteLLM). */
    hostPorts: z.array(z.number().int().min(1).max(65535)).max(50).default([]),
  })
  .strict();
export type SandboxOptions = z.output<typeof SandboxOptions>;

/** A role's sandbox: options, or `"none"` to run its agents with the worker's own view of the host (logged). */
export const SandboxPolicy = z.union([z.literal('none'), SandboxOptions]);
export type SandboxPolicyInput = z.input<typeof SandboxPolicy>;
export type SandboxPolicy = z.output<typeof SandboxPolicy>;

export const DEFAULT_SANDBOX: SandboxOptions = SandboxOptions.parse({});
