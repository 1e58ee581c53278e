#!/usr/bin/env node
// A small agent for the tests. Behaviour comes from flags; every start is recorded as a JSON line
// {event, attempt, pid, t, env} in --record FILE so tests can see what really ran and when.
//   --progress N          print N progress lines (::fleet::) spread over --sleep-ms
//   --sleep-ms MS         run this long (default 0)
//   --exit CODE           exit with CODE (default 0)
//   --fail-until N        exit 3 while FLEET_ATTEMPT < N
//   --stall-on N          on attempt N print one line, then stay silent forever
//   --hang-on N           on attempt N run forever (printing nothing but heartbeat lines)
//   --hang-unless-recovered  report 30% "waiting to be resumed", then run forever unless FLEET_RECOVERY_CONTEXT
//                         is set (a resumed agent finishes)
//   --ignore-term         ignore SIGTERM (only SIGKILL stops it)
//   --fork-child          start a child process that sleeps (and ignores SIGTERM too)
//   --report-via-api      POST a heartbeat and progress {50, "via api"} with FLEET_AGENT_TOKEN, and try
//                         the token on --other-agent ID; statuses are recorded as event "api"
//   --flood BYTES         write BYTES to stdout as fast as the pipe takes them (0: until killed), then go on
//                         as usual; records {event: "flood", bytes} every 256 MiB and {event: "flooded", bytes, ms}
//   --flood-style S       "lines" (100-byte lines, the default) or "nonl" (not one newline)
//   --flood-stderr        also write a line to stderr every 16 chunks (both pipes busy at once)
//   --fork-tree N,M       start N children that each start M grandchildren; all ignore SIGTERM, one child
//                         stops itself (SIGSTOP); each records {event: "tree", pid, ppid, pgid}
//   --wait-file FILE      (after --flood, before the rest) wait until FILE exists
//   --daemonize           start a child in a new session that starts a grandchild in another new session
//                         and exits (a double-fork daemon); the daemon records {event: "daemon", pid, pgid}
//                         and runs until killed
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const has = (name) => args.includes(name);
const attempt = Number(process.env.FLEET_ATTEMPT || 0);
const record = opt('--record');
/** In a FleetTools sandbox, pid 1 is bubblewrap's init, and pids are the sandbox's own (see readRecords in test/support/harness.ts). */
const sandboxed = (() => {
  try {
    return fs.readFileSync('/proc/1/cmdline', 'utf8').split('\0')[0].endsWith('bwrap');
  } catch {
    return false;
  }
})();
/** Start time since boot in clock ticks (field 22 of /proc/self/stat): the same seen from the host, so it tells a pid's reuse. */
const startTicks = () => Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[19]);
const write = (event, extra = {}) => {
  if (record) {
    const who = { agent: process.env.FLEET_AGENT_ID, sandboxed, pid: process.pid, startTicks: startTicks() };
    fs.appendFileSync(record, JSON.stringify({ event, attempt, ...who, t: Date.now(), ...extra }) + '\n');
  }
};
const forever = () => setInterval(() => {}, 1 << 30);
/** The process group (field 5 of /proc/self/stat, after the command name in parentheses). */
const pgidOf = (pid) => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[2]);
const self = (...extra) => spawn(process.execPath, [__filename, ...(record ? ['--record', record] : []), ...extra], { stdio: 'ignore' });

// Roles of the processes the agent starts (--fork-tree, --daemonize): they record themselves and run until killed.
if (has('--tree-node')) {
  process.on('SIGTERM', () => undefined);
  for (let i = 0; i < Number(opt('--tree-node')); i++) self('--tree-node', '0');
  write('tree', { ppid: process.ppid, pgid: pgidOf(process.pid) });
  if (has('--stop-self')) process.kill(process.pid, 'SIGSTOP');
  forever();
  return;
}
if (has('--daemon-parent')) {
  // detached: setsid() in the child, so the daemon is in a session and group of its own; this parent then exits.
  spawn(process.execPath, [__filename, '--daemon', ...(record ? ['--record', record] : [])], { stdio: 'ignore', detached: true }).unref();
  setTimeout(() => process.exit(0), 100);
  return;
}
if (has('--daemon')) {
  process.on('SIGHUP', () => undefined);
  write('daemon', { ppid: process.ppid, pgid: pgidOf(process.pid) });
  forever();
  return;
}

if (has('--ignore-term')) process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
let childPid = null;
if (has('--fork-child')) {
  const child = spawn(process.execPath, ['-e', "process.on('SIGTERM',()=>{}); setInterval(()=>{}, 1000)"], { stdio: 'ignore' });
  childPid = child.pid;
}
if (has('--fork-tree')) {
  const [n, m] = opt('--fork-tree').split(',').map(Number);
  for (let i = 0; i < n; i++) self('--tree-node', String(m), ...(i === 0 ? ['--stop-self'] : []));
}
if (has('--daemonize'))
  spawn(process.execPath, [__filename, '--daemon-parent', ...(record ? ['--record', record] : [])], { stdio: 'ignore', detached: true });
const env = {};
for (const k of Object.keys(process.env))
  env[k] = k.startsWith('FLEET_') || k.startsWith('TEST_') || k === 'PATH' || k === 'HOME' ? process.env[k] : '<set>';
write('start', { env, childPid, argv: process.argv.slice(2) });
// (a --flood-style nonl agent prints not one newline on stdout)
if (opt('--flood-style') !== 'nonl') console.log(`agent started: attempt ${attempt} pid ${process.pid}`);

async function reportViaApi() {
  const call = async (path, body) => {
    const res = await fetch(`${process.env.FLEET_API_URL}/api/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${process.env.FLEET_AGENT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return res.status;
  };
  const id = process.env.FLEET_AGENT_ID;
  const statuses = {
    heartbeat: await call(`/agents/${id}/heartbeat`, {}),
    progress: await call(`/agents/${id}/progress`, { percent: 50, message: 'via api' }),
    other: opt('--other-agent') ? await call(`/agents/${opt('--other-agent')}/heartbeat`, {}) : null,
    spawn: await call('/agents/spawn', { type: 'backend', command: ['true'] }),
  };
  write('api', { statuses });
}
if (has('--report-via-api')) reportViaApi().catch((err) => write('api', { error: String(err) }));

/** Writes to stdout as fast as the pipe takes it (waiting for 'drain': the agent goes exactly as fast as its reader). */
async function flood(total) {
  const nonl = opt('--flood-style', 'lines') === 'nonl';
  const chunk = Buffer.alloc(64 * 1024, 'x');
  if (!nonl) for (let i = 99; i < chunk.length; i += 100) chunk[i] = 0x0a;
  const toStderr = has('--flood-stderr');
  const drained = (s) => new Promise((r) => s.once('drain', r));
  const t0 = Date.now();
  let bytes = 0;
  let next = 256 * 1024 * 1024;
  for (let n = 0; total === 0 || bytes < total; n++) {
    const part = total === 0 || total - bytes >= chunk.length ? chunk : chunk.subarray(0, total - bytes);
    bytes += part.length;
    if (!process.stdout.write(part)) await drained(process.stdout);
    if (toStderr && n % 16 === 0 && !process.stderr.write(`stderr line ${n}\n`)) await drained(process.stderr);
    if (bytes >= next) {
      write('flood', { bytes });
      next += 256 * 1024 * 1024;
    }
  }
  if (!nonl) process.stdout.write('\n');
  write('flooded', { bytes, ms: Date.now() - t0 });
}

function main() {
  if (Number(opt('--stall-on', -1)) === attempt) {
    console.log('about to stall');
    forever();
  } else if (Number(opt('--hang-on', -1)) === attempt) {
    forever();
  } else if (has('--hang-unless-recovered') && !process.env.FLEET_RECOVERY_CONTEXT) {
    console.log('::fleet::{"percent":30,"message":"waiting to be resumed"}');
    forever();
  } else {
    const sleepMs = Number(opt('--sleep-ms', 0));
    const steps = Number(opt('--progress', 0));
    let i = 0;
    const finish = () => {
      const failUntil = Number(opt('--fail-until', 0));
      const code = attempt < failUntil ? 3 : Number(opt('--exit', 0));
      console.error(`agent exiting with ${code}`);
      write('exit', { code });
      process.exit(code);
    };
    if (steps > 0) {
      const every = sleepMs / steps;
      const tick = () => {
        i++;
        console.log(`::fleet::${JSON.stringify({ percent: Math.round((i / steps) * 100), message: `step ${i} of ${steps}` })}`);
        if (i >= steps) finish();
        else setTimeout(tick, every);
      };
      setTimeout(tick, every);
    } else {
      setTimeout(finish, sleepMs);
    }
  }
}
/** Resolves once --wait-file's file exists (at once without the flag). */
async function waitFile() {
  const file = opt('--wait-file');
  while (file && !fs.existsSync(file)) await new Promise((r) => setTimeout(r, 50));
}
(has('--flood') ? flood(Number(opt('--flood'))) : Promise.resolve()).then(waitFile).then(main);
