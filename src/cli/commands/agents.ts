/** `fleet agents …`: spawn, list, show and terminate agents through the REST API. */
import type { Command } from 'commander';
import { Agent, AGENT_TYPES, SpawnRequest, type SpawnRequestInput } from '../../domain/agent';
import { ApiClient, CliError } from '../api-client';
import { bytes, colour, progressBar, relativeTime, statusColour, table } from '../format';

interface GlobalOpts {
  apiUrl?: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

const client = (cmd: Command) => new ApiClient(cmd.optsWithGlobals<GlobalOpts>());
const print = (cmd: Command, value: unknown, human: () => string) => {
  process.stdout.write(cmd.optsWithGlobals<GlobalOpts>().json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
};

const collect = (v: string, prev: string[] = []) => [...prev, v];
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new CliError(`${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
};

function agentRows(agents: Agent[]): string[][] {
  return [
    ['ID', 'TYPE', 'STATUS', 'ATTEMPT', 'PROGRESS', 'HEALTH', 'STARTED', 'TASK'],
    ...agents.map((a) => [
      a.id,
      a.type,
      statusColour(a.status),
      a.attempt ? `${a.attempt}/${a.maxAttempts}` : '-',
      progressBar(a.progress?.percent),
      statusColour(a.health.state),
      relativeTime(a.startedAt),
      a.task.length > 40 ? `${a.task.slice(0, 39)}…` : a.task,
    ]),
  ];
}

function agentDetail(a: Agent): string {
  const rows: [string, string][] = [
    ['ID', a.id],
    ['Type', a.type],
    ['Task', a.task || '-'],
    ['Callsign', a.callsign ?? '-'],
    ['Status', statusColour(a.status)],
    ['Attempt', `${a.attempt}/${a.maxAttempts}${a.nextAttemptAt ? ` (next ${relativeTime(a.nextAttemptAt)})` : ''}`],
    ['Progress', `${progressBar(a.progress?.percent)}${a.progress?.message ? `  ${a.progress.message}` : ''}`],
    ['Health', `${statusColour(a.health.state)} (last heartbeat ${relativeTime(a.health.lastHeartbeatAt)})`],
    ['Process', a.pid ? `pid ${a.pid} on ${a.host}` : '-'],
    ['Resources', a.resources ? `${a.resources.cpuPercent}% CPU, ${bytes(a.resources.rssBytes)} RSS, ${a.resources.processCount} processes` : '-'],
    ['Started', a.startedAt ? `${a.startedAt} (${relativeTime(a.startedAt)})` : '-'],
    ['Ended', a.endedAt ? `${a.endedAt} (${relativeTime(a.endedAt)})` : '-'],
    ['Exit code', a.exitCode === null ? '-' : String(a.exitCode)],
    ['Last error', a.lastError ?? '-'],
    ['Mission', a.missionId ?? '-'],
    ['Queue', a.queue],
    ['Log', a.logPath ?? '-'],
    ['Web UI', a.uiUrl ?? '-'],
  ];
  return table(rows.map(([k, v]) => [colour.bold(k), v]));
}

export function registerAgentCommands(program: Command): void {
  const agents = program.command('agents').description('spawn and watch agents');

  agents
    .command('spawn <type> [task] [command...]')
    .description(`spawn an agent (types: ${AGENT_TYPES.join(', ')}); the agent's command goes after --`)
    .usage('<type> [task] [options] -- <command...>')
    .option('--callsign <name>', 'a short name for the agent')
    .option('--runtime <name>', 'how to run it (default exec: the command after --)')
    .option('--cwd <dir>', 'working directory of the agent process')
    .option('--mission <id>', 'mission the agent belongs to')
    .option('--queue <name>', 'task queue (the workers that may run it)')
    .option('--env <KEY=VALUE>', 'environment variable for the agent (repeatable)', collect)
    .option('--max-attempts <n>', 'attempts before the agent fails (default 3)', num('--max-attempts'))
    .option('--initial-interval-ms <ms>', 'first retry delay (default 1000)', num('--initial-interval-ms'))
    .option('--backoff <coefficient>', 'retry delay multiplier (default 2)', num('--backoff'))
    .option('--max-interval-ms <ms>', 'longest retry delay (default 60000)', num('--max-interval-ms'))
    .option('--fatal-exit-code <code>', 'exit code that must not be retried (repeatable)', collect)
    .option('--heartbeat-timeout-ms <ms>', 'a worker silent this long is presumed dead and the attempt retried', num('--heartbeat-timeout-ms'))
    .option('--stall-timeout-ms <ms>', 'no output, progress or heartbeat this long fails the attempt (0 = never)', num('--stall-timeout-ms'))
    .option('--timeout-ms <ms>', 'longest time one attempt may run', num('--timeout-ms'))
    .action(async (type: string, task: string | undefined, command: string[], o: Record<string, unknown>, cmd: Command) => {
      const env = Object.fromEntries(
        ((o.env as string[] | undefined) ?? []).map((kv) => {
          const i = kv.indexOf('=');
          if (i <= 0) throw new CliError(`--env expects KEY=VALUE, got ${JSON.stringify(kv)}`);
          return [kv.slice(0, i), kv.slice(i + 1)];
        }),
      );
      const retryGiven = ['maxAttempts', 'initialIntervalMs', 'backoff', 'maxIntervalMs'].some((k) => o[k] !== undefined);
      const input: SpawnRequestInput = {
        type: type as SpawnRequestInput['type'],
        task: task ?? '',
        callsign: o.callsign as string | undefined,
        runtime: o.runtime as string | undefined,
        command: command.length ? command : undefined,
        cwd: o.cwd as string | undefined,
        env: Object.keys(env).length ? env : undefined,
        missionId: o.mission as string | undefined,
        queue: o.queue as string | undefined,
        retry: retryGiven
          ? { maxAttempts: o.maxAttempts as number | undefined, initialIntervalMs: o.initialIntervalMs as number | undefined, backoffCoefficient: o.backoff as number | undefined, maxIntervalMs: o.maxIntervalMs as number | undefined }
          : undefined,
        fatalExitCodes: (o.fatalExitCode as string[] | undefined)?.map(Number),
        heartbeatTimeoutMs: o.heartbeatTimeoutMs as number | undefined,
        stallTimeoutMs: o.stallTimeoutMs as number | undefined,
        timeoutMs: o.timeoutMs as number | undefined,
      };
      const parsed = SpawnRequest.safeParse(JSON.parse(JSON.stringify(input)));
      if (!parsed.success) {
        throw new CliError(parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('\n'), 'see `fleet agents spawn --help`');
      }
      const agent = await client(cmd).request<Agent>('POST', '/agents/spawn', parsed.data);
      print(cmd, agent, () => `Spawned ${agent.id} (${agent.type}, ${agent.status})\n${agent.uiUrl ? `Web UI: ${agent.uiUrl}` : ''}`.trimEnd());
    });

  const listOrShow = async (id: string | undefined, o: { type?: string; status?: string; mission?: string; limit?: string }, cmd: Command) => {
    const api = client(cmd);
    if (id) {
      const agent = await api.request<Agent>('GET', `/agents/${encodeURIComponent(id)}`);
      print(cmd, agent, () => agentDetail(agent));
      return;
    }
    const q = new URLSearchParams();
    if (o.type) q.set('type', o.type);
    if (o.status) q.set('status', o.status);
    if (o.mission) q.set('missionId', o.mission);
    if (o.limit) q.set('limit', o.limit);
    const res = await api.request<{ agents: Agent[]; nextCursor: string | null }>('GET', `/agents${q.size ? `?${q}` : ''}`);
    print(cmd, res, () => (res.agents.length ? table(agentRows(res.agents)) : 'No agents.'));
  };
  for (const name of ['status', 'ls', 'show']) {
    agents
      .command(`${name} [id]`)
      .description(name === 'show' ? "one agent's details, with its Web UI link" : 'list agents, or show one')
      .option('--type <type>', 'only agents of this type')
      .option('--status <status>', 'only agents with this status')
      .option('--mission <id>', 'only agents of this mission')
      .option('--limit <n>', 'at most this many (default 100)')
      .action(listOrShow);
  }

  agents
    .command('terminate <id>')
    .description('stop an agent: SIGTERM to its process group, SIGKILL after the grace period')
    .option('--grace-ms <ms>', 'time between SIGTERM and SIGKILL')
    .option('--reason <text>', 'why (kept in the agent history)')
    .action(async (id: string, o: { graceMs?: string; reason?: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (o.graceMs !== undefined) q.set('graceMs', o.graceMs);
      if (o.reason) q.set('reason', o.reason);
      const agent = await client(cmd).request<Agent>('DELETE', `/agents/${encodeURIComponent(id)}${q.size ? `?${q}` : ''}`);
      print(cmd, agent, () => `Terminating ${agent.id}`);
    });
}
