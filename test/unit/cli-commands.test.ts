/** The `fleet` command groups are plural nouns; the singular forms they had stay as aliases, so existing scripts keep working. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';

const FLEET_BIN = join(resolve(__dirname, '..', '..', '..'), 'dist', 'src', 'cli', 'main.js');

/** `fleet …args` with a zero exit (execFileSync throws otherwise); its stdout. */
const fleet = (...args: string[]) =>
  execFileSync(process.execPath, [FLEET_BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 });

/** The names (with their aliases, as `name|alias`) under "Commands:" in a help text. */
const commandsOf = (help: string) => [...help.split('\nCommands:\n')[1]!.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!);

describe('fleet command names', () => {
  it('lists the plural group names in fleet --help, with the singular alias', () => {
    const names = commandsOf(fleet('--help'));
    for (const group of ['agents', 'missions|mission', 'checkpoints', 'recoveries', 'locks', 'messages', 'worktrees'])
      assert.ok(names.includes(group), `${group} in ${names.join(', ')}`);
    assert.ok(!names.includes('mission|missions'));
  });

  it('runs `fleet mission …` as `fleet missions …`', () => {
    const plural = fleet('missions', '--help');
    assert.deepEqual(commandsOf(plural), ['create', 'status|show', 'list|ls', 'cancel', 'help']);
    assert.equal(fleet('mission', '--help'), plural);
    for (const sub of ['create', 'status', 'list', 'cancel'])
      assert.equal(fleet('mission', sub, '--help'), fleet('missions', sub, '--help'));
  });

  it('lists agents with `fleet agents list`, and with the older `ls` and `status`', () => {
    const names = commandsOf(fleet('agents', '--help'));
    assert.ok(names.includes('list|ls'), names.join(', '));
    for (const alias of ['ls', 'status']) assert.equal(fleet('agents', alias, '--help'), fleet('agents', 'list', '--help'));
  });

  it('takes a checkpoint with `fleet checkpoints create`, and with the short `fleet checkpoint`', () => {
    assert.ok(commandsOf(fleet('checkpoints', '--help')).includes('create'));
    const options = (help: string) => help.split('\nOptions:\n')[1];
    assert.equal(options(fleet('checkpoint', '--help')), options(fleet('checkpoints', 'create', '--help')));
  });
});
