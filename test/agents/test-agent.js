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
const write = (event, extra = {}) => {
  if (record) fs.appendFileSync(record, JSON.stringify({ event, attempt, pid: process.pid, t: Date.now(), ...extra }) + '\n');
};

if (has('--ignore-term')) process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
let childPid = null;
if (has('--fork-child')) {
  const child = spawn(process.execPath, ['-e', "process.on('SIGTERM',()=>{}); setInterval(()=>{}, 1000)"], { stdio: 'ignore' });
  childPid = child.pid;
}
const env = {};
for (const k of Object.keys(process.env)) env[k] = k.startsWith('FLEET_') || k.startsWith('TEST_') || k === 'PATH' || k === 'HOME' ? process.env[k] : '<set>';
write('start', { env, childPid, argv: process.argv.slice(2) });
console.log(`agent started: attempt ${attempt} pid ${process.pid}`);

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

const forever = () => setInterval(() => {}, 1 << 30);
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
