#!/usr/bin/env node
/**
 * A hostile agent for the sandbox tests: it tries, from inside its own process, what an attacker would to get
 * around the FleetTools API, and prints one line `ATTACK {json}` saying what worked. It never fails itself.
 *
 * Environment: ATTACK_DATA_DIR (the fleet's data dir), ATTACK_VICTIM (a string in another agent's environment, base64),
 * ATTACK_ALLOWED_PORTS (comma-separated loopback ports the agent may reach besides the API's), ATTACK_OUTSIDE (a
 * directory outside its working directory and $HOME, where it tries to plant a file).
 */
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const dataDir = process.env.ATTACK_DATA_DIR || '';
// Given in base64, so that the attacker's own environment does not hold the string it looks for.
const victim = Buffer.from(process.env.ATTACK_VICTIM || '', 'base64').toString('utf8');
const apiUrl = new URL(process.env.FLEET_API_URL || 'http://127.0.0.1:1');
const apiPort = Number(apiUrl.port);
const allowed = new Set((process.env.ATTACK_ALLOWED_PORTS || '').split(',').filter(Boolean).map(Number));

const tryRead = (p) => {
  try {
    return fs.readFileSync(p, 'utf8').slice(0, 200);
  } catch (err) {
    return null;
  }
};
const tryList = (p) => {
  try {
    return fs.readdirSync(p);
  } catch {
    return null;
  }
};
const tryWrite = (p) => {
  try {
    fs.writeFileSync(p, 'planted by an agent\n', { flag: 'a' });
    return true;
  } catch {
    return false;
  }
};

/** Every pid visible in /proc whose environment holds the victim's marker. */
function environsWithVictim() {
  const found = [];
  for (const pid of (tryList('/proc') || []).filter((e) => /^\d+$/.test(e))) {
    let env = '';
    try {
      env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (victim && env.includes(victim)) found.push(Number(pid));
  }
  return found;
}

/** Loopback TCP ports that accept a connection, all 65535 tried (a refused connect on loopback is immediate). */
async function openLoopbackPorts() {
  const open = [];
  const probe = (port) =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.setTimeout(1000);
      const done = (ok) => {
        s.destroy();
        if (ok) open.push(port);
        resolve();
      };
      // A connect to a free ephemeral port can pick that same port as its source and connect to itself: not a listener.
      s.once('connect', () => done(s.localPort !== port));
      s.once('error', () => done(false));
      s.once('timeout', () => done(false));
    });
  for (let start = 1; start <= 65535; start += 500) {
    const batch = [];
    for (let p = start; p < start + 500 && p <= 65535; p++) batch.push(probe(p));
    await Promise.all(batch);
  }
  return open.sort((a, b) => a - b);
}

async function status(url, token) {
  try {
    const r = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return r.status;
  } catch (err) {
    return `error: ${err.message} ${err.cause ? err.cause.message : ''} (${url})`;
  }
}

async function main() {
  const token = process.env.FLEET_AGENT_TOKEN;
  const stolenAdmin = tryRead(path.join(dataDir, 'api-token'));
  const result = {
    dataDirListing: tryList(dataDir),
    apiToken: stolenAdmin,
    temporalDb: tryList(path.join(dataDir, 'temporal')),
    logsDir: tryList(path.join(dataDir, 'logs')),
    parentCmdline: tryRead(`/proc/${process.ppid}/cmdline`),
    visiblePids: (tryList('/proc') || []).filter((e) => /^\d+$/.test(e)).length,
    victimEnvirons: environsWithVictim(),
    homeWritable: tryWrite(path.join(process.env.HOME || '/root', '.fleet-attack-planted')),
    outsideWritable: tryWrite(path.join(process.env.ATTACK_OUTSIDE || '/nonexistent', 'planted')),
    openPorts: (await openLoopbackPorts()).filter((p) => p !== apiPort && !allowed.has(p)),
    apiHealth: await status(new URL('/health', apiUrl)),
    ownInbox: await status(new URL(`/api/v1/agents/${process.env.FLEET_AGENT_ID}/inbox`, apiUrl), token),
    adminWithStolenToken: stolenAdmin ? await status(new URL('/api/v1/agents', apiUrl), stolenAdmin.trim()) : null,
  };
  process.stdout.write(`ATTACK ${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stdout.write(`ATTACK ${JSON.stringify({ crashed: String(err && err.stack) })}\n`);
});
