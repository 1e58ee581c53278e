/** `fleet keys`: the payload keys that encrypt everything FleetTools writes to Temporal (auth/payload-keys.ts). */
import type { Command } from 'commander';
import { keyFilePath, readKeyFile, rotateKeyFile } from '../../auth/payload-keys';
import * as settings from '../settings';

type KeysOptions = { dataDir?: string; json?: boolean };

export function registerKeyCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('the payload keys (FLEET_PAYLOAD_KEY_FILE, default <data dir>/payload-keys.json): list, rotate');
  keys
    .command('list', { isDefault: true })
    .description('the key ids in the key file; the last one encrypts new payloads')
    .action((_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<KeysOptions>();
      const path = keyFilePath(settings.dataDir(o.dataDir));
      const ids = readKeyFile(path).keys.map((k) => ({ id: k.id, createdAt: k.createdAt ?? null }));
      const current = ids[ids.length - 1]!.id;
      if (o.json) process.stdout.write(`${JSON.stringify({ file: path, current, keys: ids })}\n`);
      else
        process.stdout.write(
          `${path}\n${ids.map((k) => `  ${k.id === current ? '*' : ' '} ${k.id}  ${k.createdAt ?? ''}`).join('\n')}\n(* encrypts new payloads)\n`,
        );
    });
  keys
    .command('rotate')
    .description('add a new key that encrypts new payloads from now on; older keys stay to decrypt what they encrypted')
    .action((_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<KeysOptions>();
      const path = keyFilePath(settings.dataDir(o.dataDir));
      const { id, keys: ids } = rotateKeyFile(path);
      if (o.json) process.stdout.write(`${JSON.stringify({ file: path, current: id, keys: ids })}\n`);
      else
        process.stdout.write(
          `Added key ${id} to ${path} (keys: ${ids.join(', ')}).\n` +
            'Copy the file to every host that runs `fleet worker` or `fleet api` (FLEET_PAYLOAD_KEY_FILE), then restart\n' +
            'every FleetTools process: new payloads use the new key once restarted; old ones still decrypt.\n',
        );
    });
}
