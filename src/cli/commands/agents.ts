/** `fleet agents …`: spawn, list, show and terminate agents through the REST API. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { type Agent, AGENT_TYPES, RUNTIME_NAMES, SpawnRequest, type SpawnRequestInput } from '../../domain/agent';
import type { AgentHealth, AgentList, AgentLogTail, AgentResources, SystemHealth } from '../../domain/api';
import { issuesText } from '../../domain/issues-text';
import { CliError } from '../api-client';
import { client, print, type GlobalOpts } from '../command-io';
import { agentDetail, agentHealthText, agentRows, resourceRows, systemHealthText } from '../agent-format';
import { colour, jsonText, table, terminalSafe, terminalSafeDeep } from '../format';
import { collect, num } from '../options';

export function registerAgentCommands(program: Command): void {
  const agents = program.command('agents').description('spawn and watch agents');
  spawnCommand(agents);
  for (const name of ['list', 'show']) {
    agents
      .command(`${name} [id]`)
      .aliases(name === 'list' ? ['ls', 'status'] : [])
      .description(name === 'show' ? "one agent's details, with its Web UI link" : 'list agents, or show one')
      .option('--type <type>', 'only agents of this type')
      .option('--status <status>', 'only agents with this status')
      .option('--mission <id>', 'only agents of this mission')
      .option('--limit <n>', 'at most this many (default 100)')
      .action(listOrShowAgents);
  }
  agents
    .command('terminate <id>')
    .description('stop an agent: SIGTERM to its process group, SIGKILL after the grace period')
    .option('--grace-ms <ms>', 'time between SIGTERM and SIGKILL')
    .option('--reason <text>', 'why (kept in the agent history)')
    .action(terminateAgent);
  agents
    .command('health [id]')
    .description("one agent's health (heartbeat age), or the system's: agents by status, workers, Temporal")
    .option('--queues <list>', 'also show workers polling these task queues (comma-separated)')
    .action(showHealth);
  agents
    .command('resources [id]')
    .description("CPU and memory of an agent's whole process tree, or of every running agent")
    .action(showResources);
  agents
    .command('logs <id>')
    .description("an agent's output: the last lines of an attempt, or follow it until the agent ends")
    .option('-f, --follow', 'keep printing new lines (and later attempts) until the agent ends')
    .option('-n, --tail <n>', 'how many of the last lines', '100')
    .option('--attempt <n>', 'which attempt (default: the latest)')
    .action(showLogs);
}

function spawnCommand(agents: Command): void {
  agents
    .command('spawn <type> [task] [command...]')
    .description(`spawn an agent (types: ${AGENT_TYPES.join(', ')}); the agent's command goes after --`)
    .usage('<type> [task] [options] -- <command...>')
    .option('--callsign <name>', 'a short name for the agent')
    .option(
      '--runtime <name>',
      `how to run it: ${RUNTIME_NAMES.join(', ')} (default: exec when a command follows --, else the role's runtime)`,
    )
    .option('--model <name>', "the model, as the runtime's CLI names it (default: the role's, else the CLI's)")
    .option('--instructions <text>', "instructions (system prompt) instead of the role's")
    .option('--instructions-file <file>', "instructions read from a file instead of the role's")
    .option('--worktree', 'run in a git worktree and branch of its own (fleet/<agent id>) of the repository at --cwd, kept for review')
    .option('--cwd <dir>', 'working directory of the agent process (default: the current directory)')
    .option('--mission <id>', 'mission the agent belongs to')
    .option('--queue <name>', 'task queue (the workers that may run it)')
    .option('--env <KEY=VALUE>', 'environment variable for the agent (repeatable)', collect)
    .option('--max-attempts <n>', 'attempts before the agent fails (default 3)', num('--max-attempts'))
    .option('--initial-interval-ms <ms>', 'first retry delay (default 1000)', num('--initial-interval-ms'))
    .option('--backoff <coefficient>', 'retry delay multiplier (default 2)', num('--backoff'))
    .option('--max-interval-ms <ms>', 'longest retry delay (default 60000)', num('--max-interval-ms'))
    .option('--fatal-exit-code <code>', 'exit code that must not be retried (repeatable)', collect)
    .option(
      '--heartbeat-timeout-ms <ms>',
      'a worker silent this long is presumed dead and the attempt retried',
      num('--heartbeat-timeout-ms'),
    )
    .option(
      '--stall-timeout-ms <ms>',
      'no output, progress or heartbeat this long fails the attempt (0 = never)',
      num('--stall-timeout-ms'),
    )
    .option('--timeout-ms <ms>', 'longest time one attempt may run', num('--timeout-ms'))
    .action(spawnAgent);
}

async function spawnAgent(
  type: string,
  task: string | undefined,
  command: string[],
  o: Record<string, unknown>,
  cmd: Command,
): Promise<void> {
  const parsed = SpawnRequest.safeParse(JSON.parse(JSON.stringify(spawnInput(type, task, command, o))));
  if (!parsed.success) {
    throw new CliError(issuesText(parsed.error.issues, { root: 'input', separator: '\n' }), 'see `fleet agents spawn --help`');
  }
  const agent = await client(cmd).request<Agent>('POST', '/agents/spawn', parsed.data);
  print(cmd, agent, (a) => `Spawned ${a.id} (${a.type}, ${a.status})\n${a.uiUrl ? `Web UI: ${a.uiUrl}` : ''}`.trimEnd());
}

/** The spawn request from `fleet agents spawn`'s arguments and options, not yet checked. */
function spawnInput(type: string, task: string | undefined, command: string[], o: Record<string, unknown>): SpawnRequestInput {
  const env = envOption((o.env as string[] | undefined) ?? []);
  const retryGiven = ['maxAttempts', 'initialIntervalMs', 'backoff', 'maxIntervalMs'].some((k) => o[k] !== undefined);
  return {
    type: type as SpawnRequestInput['type'],
    task: task ?? '',
    callsign: o.callsign as string | undefined,
    runtime: o.runtime as SpawnRequestInput['runtime'],
    model: o.model as string | undefined,
    instructions: instructionsOption(o.instructions as string | undefined, o.instructionsFile as string | undefined),
    worktree: o.worktree ? true : undefined,
    command: command.length ? command : undefined,
    cwd: resolve((o.cwd as string | undefined) ?? process.cwd()),
    env: Object.keys(env).length ? env : undefined,
    missionId: o.mission as string | undefined,
    queue: o.queue as string | undefined,
    retry: retryGiven
      ? {
          maxAttempts: o.maxAttempts as number | undefined,
          initialIntervalMs: o.initialIntervalMs as number | undefined,
          backoffCoefficient: o.backoff as number | undefined,
          maxIntervalMs: o.maxIntervalMs as number | undefined,
        }
      : undefined,
    fatalExitCodes: (o.fatalExitCode as string[] | undefined)?.map(Number),
    heartbeatTimeoutMs: o.heartbeatTimeoutMs as number | undefined,
    stallTimeoutMs: o.stallTimeoutMs as number | undefined,
    timeoutMs: o.timeoutMs as number | undefined,
  };
}

/** `--env KEY=VALUE` (repeated) -> { KEY: VALUE }. */
function envOption(pairs: string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((kv) => {
      const i = kv.indexOf('=');
      if (i <= 0) throw new CliError(`--env expects KEY=VALUE, got ${JSON.stringify(kv)}`);
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
}

function instructionsOption(text: string | undefined, file: string | undefined): string | undefined {
  if (text !== undefined && file !== undefined) throw new CliError('give --instructions or --instructions-file, not both');
  if (file === undefined) return text;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read --instructions-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function listOrShowAgents(
  id: string | undefined,
  o: { type?: string; status?: string; mission?: string; limit?: string },
  cmd: Command,
): Promise<void> {
  const api = client(cmd);
  if (id) {
    const agent = await api.request<Agent>('GET', `/agents/${encodeURIComponent(id)}`);
    print(cmd, agent, (a) => agentDetail(a));
    return;
  }
  const q = new URLSearchParams();
  if (o.type) q.set('type', o.type);
  if (o.status) q.set('status', o.status);
  if (o.mission) q.set('missionId', o.mission);
  if (o.limit) q.set('limit', o.limit);
  const res = await api.request<{ agents: Agent[]; nextCursor: string | null }>('GET', `/agents${q.size ? `?${q}` : ''}`);
  print(cmd, res, (r) => (r.agents.length ? table(agentRows(r.agents)) : 'No agents.'));
}

async function terminateAgent(id: string, o: { graceMs?: string; reason?: string }, cmd: Command): Promise<void> {
  const q = new URLSearchParams();
  if (o.graceMs !== undefined) q.set('graceMs', o.graceMs);
  if (o.reason) q.set('reason', o.reason);
  const agent = await client(cmd).request<Agent>('DELETE', `/agents/${encodeURIComponent(id)}${q.size ? `?${q}` : ''}`);
  print(cmd, agent, (a) => `Terminating ${a.id}`);
}

async function showHealth(id: string | undefined, o: { queues?: string }, cmd: Command): Promise<void> {
  const api = client(cmd);
  if (id) {
    const h = await api.request<AgentHealth>('GET', `/agents/${encodeURIComponent(id)}/health`);
    print(cmd, h, (x) => agentHealthText(x));
    return;
  }
  const s = await api.request<SystemHealth>('GET', `/agents/system-health${o.queues ? `?queues=${encodeURIComponent(o.queues)}` : ''}`);
  print(cmd, s, (x) => systemHealthText(x));
}

async function showResources(id: string | undefined, _o: unknown, cmd: Command): Promise<void> {
  const api = client(cmd);
  const ids = id ? [id] : (await api.request<AgentList>('GET', '/agents?status=running&limit=1000')).agents.map((a) => a.id);
  const all = await Promise.all(ids.map((i) => api.request<AgentResources>('GET', `/agents/${encodeURIComponent(i)}/resources`)));
  print(cmd, id ? all[0] : { agents: all }, () => (all.length === 0 ? 'No running agents.' : table(resourceRows(terminalSafeDeep(all)))));
}

async function showLogs(id: string, o: { follow?: boolean; tail: string; attempt?: string }, cmd: Command): Promise<void> {
  const api = client(cmd);
  const q = new URLSearchParams({ tail: o.tail });
  if (o.attempt) q.set('attempt', o.attempt);
  const json = cmd.optsWithGlobals<GlobalOpts>().json;
  if (!o.follow) {
    const res = await api.request<AgentLogTail>('GET', `/agents/${encodeURIComponent(id)}/logs?${q}`);
    // What the agent printed, as text: its terminal control sequences are removed (exact with --json).
    if (json) process.stdout.write(`${jsonText(res, 2)}\n`);
    else if (res.lines.length) process.stdout.write(`${res.lines.map(terminalSafe).join('\n')}\n`);
    return;
  }
  q.set('follow', 'true');
  await api.stream(`/agents/${encodeURIComponent(id)}/logs?${q}`, (event, data) => {
    if (json) process.stdout.write(`${jsonText({ event, data })}\n`);
    else if (event === 'message') process.stdout.write(`${terminalSafe(data)}\n`);
    else if (event === 'attempt') process.stderr.write(colour.dim(`--- attempt ${terminalSafe(data)} ---\n`));
    else if (event === 'error') {
      process.stderr.write(`${terminalSafe(data)}\n`);
      process.exitCode = 1;
    }
  });
}
