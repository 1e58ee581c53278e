/**
 * The recorded workflow histories (test/fixtures/histories/*.json): where they are, and how one is read. Shared by
 * the replay test and the script that records them, so that both agree on the folder and the format.
 *
 * A file is exactly what `temporal workflow show --output json` and the SDK's historyToJSON write: {"events": [...]}.
 * A history holds no workflow id; the file's name (without .json) stands in for it during replay.
 */
import type { History } from '@temporalio/common/lib/proto-utils';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** From dist/test/replay/ (compiled) up to the repository, then into the sources' fixtures. */
export const HISTORIES_DIR = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'histories');

/**
 * ProtoJSON of the protobufjs that @temporalio/proto is built with. The SDK's own historyToJSON and historyFromJSON
 * (@temporalio/common/lib/proto-utils, which Worker.runReplayHistory also calls on a history read from JSON) fail
 * here with "type must be a Type": this lockfile gives @temporalio/common and @temporalio/proto a copy each of
 * protobufjs 8 (the top-level one is grpc's protobufjs 7), and one copy's `instanceof Type` rejects the other's.
 * Resolved from @temporalio/proto, this is its copy wherever npm puts it.
 */
interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }): History | null;
}
const protojson = require(
  require.resolve('protobufjs/ext/protojson', { paths: [dirname(require.resolve('@temporalio/proto'))] }),
) as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

/** A fetched history as the JSON `temporal workflow show --output json` prints (what historyToJSON would write). */
export function historyToJson(history: History): string {
  return JSON.stringify(protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)), null, 2) + '\n';
}

/** The other way. Unknown fields (a newer server's) are ignored, as historyFromJSON does. */
export function historyFromJson(json: unknown): History {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { events?: unknown }).events))
    throw new TypeError('not an object with an array of events');
  const history = protojson.fromJson(historyType, json, { ignoreUnknownFields: true });
  if (!history) throw new TypeError('not a history');
  return history;
}

/** The history files, by name, sorted; none when the folder is missing. */
export function historyFiles(dir = HISTORIES_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export interface RecordedHistory {
  file: string;
  /** The file's name without .json: the workflow id given to the replayer. */
  workflowId: string;
  workflowType: string;
  history: History;
}

/** Reads and parses one file; throws naming the file when it is not a history. */
export function readHistory(file: string, dir = HISTORIES_DIR): RecordedHistory {
  let history: History;
  try {
    history = historyFromJson(JSON.parse(readFileSync(join(dir, file), 'utf8')));
  } catch (err) {
    throw new Error(
      `${file} is not a workflow history in the JSON format of \`temporal workflow show --output json\`: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const workflowType = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
  if (!workflowType) throw new Error(`${file}: its first event is not a WorkflowExecutionStarted with a workflow type`);
  return { file, workflowId: file.replace(/\.json$/, ''), workflowType, history };
}
