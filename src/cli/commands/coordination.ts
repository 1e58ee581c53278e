/** `fleet locks …` and `fleet messages …`: file locks and messages between agents, through the REST API. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { Holder, MessageRequest, type Lock, type Message } from '../../domain/coordination';
import type { z } from 'zod';
import type { Acknowledged, Inbox, LockList } from '../../domain/api';
import { CliError } from '../api-client';
import { client, enc, print, short, withNotFoundHint } from '../command-io';
import { colour, relativeTime, table } from '../format';
import { issuesText } from '../../domain/issues-text';

/** $USER when it is a valid holder name, else "cli". */
const defaultSender = () => (process.env.USER && Holder.safeParse(process.env.USER).success ? process.env.USER : 'cli');

function messageText(m: Message): string {
  const meta = [
    `from ${m.from}`,
    relativeTime(m.sentAt),
    ...(m.missionId ? [`mission ${m.missionId}`] : []),
    ...(m.redeliveredFrom ? [`redelivered from ${m.redeliveredFrom}`] : []),
  ];
  return [
    `${colour.bold(m.id)}  ${meta.join(', ')}`,
    `Subject: ${m.subject}`,
    ...(m.body
      ? m.body
          .trimEnd()
          .split('\n')
          .map((l) => `  ${l}`)
      : []),
  ].join('\n');
}

export function registerCoordinationCommands(program: Command): void {
  registerLockCommands(program);
  registerMessageCommands(program);
}

function registerLockCommands(program: Command): void {
  const locks = program.command('locks').description('file locks held by agents and missions');
  locks
    .command('list', { isDefault: true })
    .alias('ls')
    .description('locks held now, then reservations waiting for them')
    .option('--mission <id>', 'only locks of this mission')
    .option('--holder <name>', 'only locks of this holder (an agent id or a name)')
    .action(listLocks);
  locks.command('release <lockId>').description('release a lock (whoever holds it)').action(releaseLock);
}

function registerMessageCommands(program: Command): void {
  const messages = program.command('messages').description('messages to agents');
  messages
    .command('send <to>')
    .description('send a message to an agent (it reads it from its inbox)')
    .requiredOption('--subject <text>', 'subject line')
    .requiredOption('--body <text>', 'the message ("-" reads it from stdin)')
    .option('--from <name>', 'sender (default: $USER, or "cli")')
    .option('--mission <id>', 'mission the message belongs to')
    .action(sendMessage);
  messages.command('inbox <agentId>').description("an agent's unacknowledged messages, oldest first").action(showInbox);
  messages.command('ack <messageId>').description('acknowledge a message (it leaves the inbox)').action(ackMessage);
}

async function listLocks(o: { mission?: string; holder?: string }, cmd: Command): Promise<void> {
  const q = new URLSearchParams();
  if (o.holder) q.set('holder', o.holder);
  if (o.mission) q.set('missionId', o.mission);
  const res = await client(cmd).request<z.infer<typeof LockList>>('GET', `/locks${q.size ? `?${q}` : ''}`);
  print(cmd, res, (r) => lockListText(r));
}

function lockListText(res: z.infer<typeof LockList>): string {
  const out = [
    res.locks.length
      ? table([
          ['ID', 'PATH', 'HOLDER', 'MISSION', 'PURPOSE', 'ACQUIRED', 'EXPIRES'],
          ...res.locks.map((l) => [
            l.id,
            l.path,
            l.holder,
            l.missionId ?? '-',
            l.purpose ? short(l.purpose, 40) : '-',
            relativeTime(l.acquiredAt),
            relativeTime(l.expiresAt),
          ]),
        ])
      : 'No locks.',
  ];
  if (res.waiting.length) {
    out.push(
      '',
      `Waiting (${res.waiting.length}):`,
      table([
        ['REQUEST', 'HOLDER', 'MISSION', 'PATHS', 'SINCE'],
        ...res.waiting.map((w) => [w.requestId, w.holder, w.missionId ?? '-', short(w.paths.join(', '), 60), relativeTime(w.requestedAt)]),
      ]),
    );
  }
  return out.join('\n');
}

async function releaseLock(lockId: string, _o: unknown, cmd: Command): Promise<void> {
  const lock = await withNotFoundHint(client(cmd).request<Lock>('DELETE', `/locks/${enc(lockId)}`), 'list locks with `fleet locks list`');
  print(cmd, lock, (l) => `Released ${l.id}: ${l.path} (held by ${l.holder}${l.missionId ? `, mission ${l.missionId}` : ''})`);
}

async function sendMessage(to: string, o: { subject: string; body: string; from?: string; mission?: string }, cmd: Command): Promise<void> {
  const body = o.body === '-' ? readFileSync(0, 'utf8') : o.body;
  const parsed = MessageRequest.safeParse({
    from: o.from ?? defaultSender(),
    to,
    subject: o.subject,
    body,
    ...(o.mission ? { missionId: o.mission } : {}),
  });
  if (!parsed.success) {
    throw new CliError(issuesText(parsed.error.issues, { root: 'input', separator: '\n' }), 'see `fleet messages send --help`');
  }
  const m = await withNotFoundHint(client(cmd).request<Message>('POST', '/messages', parsed.data), 'list agents with `fleet agents ls`');
  print(cmd, m, (x) => `Sent ${x.id} to ${x.to}: ${x.subject}`);
}

async function showInbox(agentId: string, _o: unknown, cmd: Command): Promise<void> {
  const res = await withNotFoundHint(
    client(cmd).request<z.infer<typeof Inbox>>('GET', `/agents/${enc(agentId)}/inbox`),
    'list agents with `fleet agents ls`',
  );
  print(cmd, res, (r) => (r.messages.length ? r.messages.map(messageText).join('\n\n') : `No messages for ${agentId}.`));
}

async function ackMessage(messageId: string, _o: unknown, cmd: Command): Promise<void> {
  const res = await withNotFoundHint(
    client(cmd).request<z.infer<typeof Acknowledged>>('POST', `/messages/${enc(messageId)}/ack`),
    'see the inbox with `fleet messages inbox <agentId>`',
  );
  print(cmd, res, (r) => `Acknowledged ${r.acknowledged.id} (to ${r.acknowledged.to}): ${r.acknowledged.subject}`);
}
