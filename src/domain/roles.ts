/**
 * Agent types are roles: each has instructions (a system prompt), a default runtime, a model and
 * default limits. Defaults ship here; a project's fleet.config.json overrides them (validated by
 * FleetConfig), and a spawn request overrides both. `resolveAgentRequest` applies that order once,
 * at the API, so the workflow input records exactly what the agent was given.
 * Pure zod: no Node imports.
 */
import { z } from 'zod';
import {
  AGENT_TYPES,
  blankTaskProblem,
  type AgentType,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  DEFAULT_TERMINATE_GRACE_MS,
  RetryPolicyInput,
  RuntimeName,
  SpawnRequest,
  type RUNTIME_NAMES,
} from './agent';
import { DEFAULT_SANDBOX, SandboxPolicy } from './sandbox';

const Limits = SpawnRequest.pick({ retry: true, heartbeatTimeoutMs: true, stallTimeoutMs: true, timeoutMs: true, terminateGraceMs: true });

/** A role as fleet.config.json may set it: every field optional (unset fields keep the default). */
export const RoleConfig = Limits.extend({
  runtime: RuntimeName.optional(),
  instructions: z.string().max(64_000).optional(),
  /** A file whose text is the instructions (relative to the config file); read when the config is loaded. */
  instructionsFile: z.string().min(1).max(4096).optional(),
  model: z.string().min(1).max(200).optional(),
  /** What its agents' sandbox lets them see and reach; `"none"` runs them unsandboxed. */
  sandbox: SandboxPolicy.optional(),
})
  .strict()
  .refine((r) => !(r.instructions !== undefined && r.instructionsFile !== undefined), {
    message: 'give instructions or instructionsFile, not both',
    path: ['instructionsFile'],
  });
export type RoleConfig = z.infer<typeof RoleConfig>;

/** How FleetTools runs one CLI on this machine (read by workers; `fleet doctor` checks it). */
export const RuntimeConfig = z
  .object({
    /** The executable: a name looked up on the agent's PATH, or a path. */
    executable: z.string().min(1).max(4096).optional(),
    /** Arguments added to every invocation (before the prompt), e.g. ["--allowedTools", "Bash(npm test)"]. */
    args: z.array(z.string().max(10_000)).max(100).optional(),
    /** Model for agents whose role and request name none. */
    model: z.string().min(1).max(200).optional(),
  })
  .strict();
export type RuntimeConfig = z.infer<typeof RuntimeConfig>;

/** fleet.config.json. Unknown keys are errors, so that a typo does not silently do nothing. */
export const FleetConfig = z
  .object({
    $schema: z.string().optional(),
    /** The runtime of roles that name none (default claude-code). */
    defaultRuntime: RuntimeName.optional(),
    roles: z
      .object(Object.fromEntries(AGENT_TYPES.map((t) => [t, RoleConfig.optional()])) as Record<AgentType, z.ZodOptional<typeof RoleConfig>>)
      .strict()
      .default({}),
    runtimes: z
      .object(
        Object.fromEntries(RuntimeName.options.map((r) => [r, RuntimeConfig.optional()])) as Record<
          (typeof RUNTIME_NAMES)[number],
          z.ZodOptional<typeof RuntimeConfig>
        >,
      )
      .strict()
      .default({}),
  })
  .strict();
export type FleetConfigInput = z.input<typeof FleetConfig>;
export type FleetConfig = z.output<typeof FleetConfig>;

/** No config file: the shipped defaults. */
export const DEFAULT_FLEET_CONFIG: FleetConfig = FleetConfig.parse({});

/** A role after the config is applied to the shipped defaults. */
export interface Role {
  runtime: RuntimeName;
  instructions: string;
  model: string | null;
  limits: z.infer<typeof Limits>;
  sandbox: SandboxPolicy;
}

const COMMON =
  'You are one agent of a FleetTools fleet, working without a human in the loop. Stay within your task; other agents work on other parts of the same repository at the same time. Make focused changes, run the relevant tests before you finish, and end with a short summary of what you changed and anything left undone.';

/** The shipped instructions of each role. */
export const DEFAULT_INSTRUCTIONS: Record<AgentType, string> = {
  frontend: `${COMMON}\n\nYour role: frontend engineer. You build user interfaces: components, pages, styles and client-side state. Keep components accessible (semantic HTML, labels, keyboard use), follow the project's existing UI patterns, and add or update component tests.`,
  backend: `${COMMON}\n\nYour role: backend engineer. You build server-side code: API endpoints, data access, business logic. Validate input at the boundary, return clear errors, keep the API consistent with the existing endpoints, and add tests for success and failure paths.`,
  testing: `${COMMON}\n\nYour role: test engineer. You write and fix tests: unit, integration and end-to-end. Test behaviour, not implementation details; cover edge cases and failure paths; never weaken or skip a test to make it pass. Report bugs you find in the code under test rather than hiding them.`,
  documentation: `${COMMON}\n\nYour role: technical writer. You write and update documentation: README, guides, API references and code comments. Check every example against the code so that it runs as written; keep the existing tone and structure.`,
  security: `${COMMON}\n\nYour role: security engineer. You review and harden code: input validation, authentication and authorization, secrets handling, injection, dependency risks. Fix what you find with tests that show the fix, and explain each finding's impact briefly. Never print or commit secrets.`,
  performance: `${COMMON}\n\nYour role: performance engineer. You find and fix performance problems: measure first (benchmarks or profiles), change one thing at a time, and report figures before and after. Do not trade correctness for speed.`,
};

export const DEFAULT_RUNTIME: RuntimeName = 'claude-code';

/** The role of `type` under `config`: the config's fields over the shipped defaults. */
export function roleOf(type: AgentType, config: FleetConfig): Role {
  const r = config.roles[type] ?? {};
  return {
    runtime: r.runtime ?? config.defaultRuntime ?? DEFAULT_RUNTIME,
    instructions: r.instructions ?? DEFAULT_INSTRUCTIONS[type],
    model: r.model ?? null,
    limits: {
      retry: r.retry,
      heartbeatTimeoutMs: r.heartbeatTimeoutMs,
      stallTimeoutMs: r.stallTimeoutMs,
      timeoutMs: r.timeoutMs,
      terminateGraceMs: r.terminateGraceMs,
    },
    sandbox: r.sandbox ?? DEFAULT_SANDBOX,
  };
}

/** What an agent workflow runs: a spawn request with its role applied and every default filled in. */
export const AgentRequest = SpawnRequest.extend({
  runtime: RuntimeName,
  // Defaults: inputs written before these fields existed (agents still running across an upgrade).
  instructions: z.string().max(64_000).nullable().default(null),
  model: z.string().min(1).max(200).nullable().default(null),
  worktree: z.boolean().default(false),
  retry: RetryPolicyInput,
  heartbeatTimeoutMs: z.number().int(),
  stallTimeoutMs: z.number().int(),
  terminateGraceMs: z.number().int(),
  /** Set from the role, never by the spawn request; inputs from before sandboxes existed get the default sandbox. */
  sandbox: SandboxPolicy.default(DEFAULT_SANDBOX),
}).superRefine((r, ctx) => {
  if (r.runtime === 'exec' && !r.command)
    ctx.addIssue({
      code: 'custom',
      path: ['command'],
      message: 'runtime exec needs a command: an argv array such as ["python3", "agent.py"]',
    });
  const blank = blankTaskProblem(r.runtime, r.task);
  if (blank) ctx.addIssue({ code: 'custom', path: ['task'], message: blank });
});
export type AgentRequest = z.output<typeof AgentRequest>;

/**
 * Applies the role of the request's type: the request's own fields first, then the role's, then
 * FleetTools' defaults. A request with a command and no runtime runs that command (`exec`). `sandbox`: the role's
 * sandbox as resolved earlier (a mission's sorties, whose roles the API resolved), instead of `config`'s.
 */
export function resolveAgentRequest(req: SpawnRequest, config: FleetConfig, sandbox?: SandboxPolicy): AgentRequest {
  const role = roleOf(req.type, config);
  const runtime = req.runtime ?? (req.command ? 'exec' : role.runtime);
  const pick = <T>(mine: T | undefined, theirs: T | undefined, fallback: T): T => mine ?? theirs ?? fallback;
  return {
    ...req,
    runtime,
    instructions: runtime === 'exec' ? (req.instructions ?? null) : (req.instructions ?? role.instructions),
    model: req.model ?? role.model ?? config.runtimes[runtime]?.model ?? null,
    worktree: req.worktree ?? false,
    retry: pick(req.retry, role.limits.retry, RetryPolicyInput.parse({})),
    heartbeatTimeoutMs: pick(req.heartbeatTimeoutMs, role.limits.heartbeatTimeoutMs, DEFAULT_HEARTBEAT_TIMEOUT_MS),
    stallTimeoutMs: pick(req.stallTimeoutMs, role.limits.stallTimeoutMs, DEFAULT_STALL_TIMEOUT_MS),
    timeoutMs: req.timeoutMs ?? role.limits.timeoutMs,
    terminateGraceMs: pick(req.terminateGraceMs, role.limits.terminateGraceMs, DEFAULT_TERMINATE_GRACE_MS),
    sandbox: sandbox ?? role.sandbox,
  };
}

/** Does any role run its agents sandboxed (the default)? Then a worker needs the sandbox's tools. */
export const usesSandbox = (config: FleetConfig): boolean => AGENT_TYPES.some((t) => roleOf(t, config).sandbox !== 'none');

/** Each role's sandbox under `config`, for a mission's sorties (see MissionWorkflowInput.sandboxes). */
export const roleSandboxes = (config: FleetConfig): Record<AgentType, SandboxPolicy> =>
  Object.fromEntries(AGENT_TYPES.map((t) => [t, roleOf(t, config).sandbox])) as Record<AgentType, SandboxPolicy>;
