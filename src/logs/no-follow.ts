/**
 * Files in places an agent can write to (its directory under the logs dir, its worktree), opened without following
 * a symlink at any component below a trusted root, so that a link the agent planted is never written or read
 * through. An agent runs as the worker's user: a link to a mode-600 file of that user, followed by the worker,
 * would hand the file to the agent (a log read with its own token) or append its output to it.
 *
 * Directories are walked one component at a time with O_DIRECTORY|O_NOFOLLOW, each opened inside the previous one
 * through /proc/self/fd/<fd>/<name> (what openat(2) does; Node has no openat), so that a directory swapped for a
 * link after it was checked is not followed either. The final file is opened with O_NOFOLLOW and O_NONBLOCK (a
 * planted FIFO does not block the worker), and must be a regular file with one link (a hard link to another file
 * of the user is refused too) or a character device (/dev/full in tests; an agent cannot create one). Linux only,
 * as the rest of the process supervision.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;

/** A path under a trusted root that is a symlink, not a directory or not a regular file where one is expected. */
export class UnsafePathError extends Error {
  override name = 'UnsafePathError';
  readonly code = 'EUNSAFEPATH';
}

/** `name` inside the directory open as `dirFd`, as a path the kernel resolves from that directory. */
export const inDir = (dirFd: number, name: string): string => `/proc/self/fd/${dirFd}/${name}`;

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

function refused(path: string, what: string): UnsafePathError {
  return new UnsafePathError(
    `"${path}" ${what}: FleetTools does not follow symbolic links (or use other files) there, since an agent may have planted it; remove it`,
  );
}

/**
 * Opens the directory `<root>/<rel…>`: root is trusted (followed), each component of rel is opened without following
 * a link. With `create`, missing components are created (root with its parents) with `create.mode`. Returns its fd,
 * or undefined when a component is missing (without create); throws UnsafePathError on a link or a non-directory.
 */
export function openDirNoFollow(root: string, rel: string[], create?: { mode: number }): number | undefined {
  if (create) mkdirSync(root, { recursive: true, mode: create.mode });
  let fd: number;
  try {
    fd = openSync(root, O_RDONLY | O_DIRECTORY);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
  let path = root;
  try {
    for (const name of rel) {
      path = `${path}/${name}`;
      // A directory that exists is opened even where mkdir fails for another reason first (a read-only disk).
      let mkdirFailed: unknown;
      if (create) {
        try {
          mkdirSync(inDir(fd, name), { mode: create.mode });
        } catch (err) {
          if (errno(err) !== 'EEXIST') mkdirFailed = err;
        }
      }
      let next: number;
      try {
        next = openSync(inDir(fd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' && mkdirFailed) throw mkdirFailed;
        if (code === 'ENOENT' && !create) return closed(fd, undefined);
        if (code === 'ELOOP' || code === 'ENOTDIR') throw refused(path, 'is a symbolic link or not a directory');
        throw err;
      }
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function closed<T>(fd: number, value: T): T {
  closeSync(fd);
  return value;
}

/**
 * Opens `name` in the directory open as `dirFd` without following a link, with `flags` (O_NOFOLLOW and O_NONBLOCK
 * added); refuses anything but a regular file with one link (or a character device). `shown` names it in errors.
 * Returns undefined when it does not exist and flags do not create it.
 */
export function openFileAt(dirFd: number, name: string, flags: number, shown: string, mode = 0o600): number | undefined {
  let fd: number;
  try {
    fd = openSync(inDir(dirFd, name), flags | O_NOFOLLOW | O_NONBLOCK, mode);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' && !(flags & O_CREAT)) return undefined;
    if (code === 'ELOOP') throw refused(shown, 'is a symbolic link');
    if (code === 'ENXIO') throw refused(shown, 'is a FIFO or socket');
    throw err;
  }
  const st = fstatSync(fd);
  if (st.isCharacterDevice() || (st.isFile() && st.nlink === 1)) return fd;
  closeSync(fd);
  throw refused(shown, st.isFile() ? `has ${st.nlink} hard links` : 'is not a regular file');
}

/**
 * Opens the file `path`, under the trusted `root` (path = root/…/name), without following links below root: for
 * reading (undefined when missing) or appending (created, with its directories, owner-only).
 */
export function openBelow(root: string, path: string, how: 'read' | 'append'): number | undefined {
  const rel = relativeParts(root, path);
  const name = rel.pop()!;
  const dirFd = openDirNoFollow(root, rel, how === 'append' ? { mode: 0o700 } : undefined);
  if (dirFd === undefined) return undefined;
  try {
    return openFileAt(dirFd, name, how === 'append' ? O_WRONLY | O_APPEND | O_CREAT : O_RDONLY, path);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * Writes `text` to `path` under the trusted `root` (owner-only): to a new file beside it, renamed over it, so that a
 * link or another file planted at `path` is replaced, never written through or truncated.
 */
export function writeFileBelow(root: string, path: string, text: string): void {
  const rel = relativeParts(root, path);
  const name = rel.pop()!;
  const dirFd = openDirNoFollow(root, rel, { mode: 0o700 })!;
  try {
    const tmp = `.${name}.${randomBytes(6).toString('hex')}.tmp`;
    const fd = openFileAt(dirFd, tmp, O_WRONLY | O_CREAT | O_EXCL, path)!;
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(inDir(dirFd, tmp), inDir(dirFd, name));
  } finally {
    closeSync(dirFd);
  }
}

/** Renames `from` to `to`, both in the same directory under the trusted root, without following links below root. */
export function renameBelow(root: string, from: string, to: string): void {
  const rel = relativeParts(root, from);
  const name = rel.pop()!;
  if (dirname(to) !== dirname(from)) throw new RangeError(`renameBelow: "${to}" is not beside "${from}"`);
  const dirFd = openDirNoFollow(root, rel);
  if (dirFd === undefined) throw Object.assign(new Error(`ENOENT: no such directory, rename '${from}'`), { code: 'ENOENT' });
  try {
    renameSync(inDir(dirFd, name), inDir(dirFd, basename(to)));
  } finally {
    closeSync(dirFd);
  }
}

/** The components of `path` below `root` (at least one); throws if path is not strictly below root. */
function relativeParts(root: string, path: string): string[] {
  const prefix = root.endsWith('/') ? root : `${root}/`;
  if (!path.startsWith(prefix)) throw new RangeError(`"${path}" is not below "${root}"`);
  const parts = path.slice(prefix.length).split('/').filter(Boolean);
  if (parts.length === 0 || parts.some((p) => p === '..' || p === '.')) throw new RangeError(`"${path}" is not a file below "${root}"`);
  return parts;
}
