/** Mission files (`fleet mission create <file>`): JSON and YAML, cwd resolution, syntax and graph errors; durations. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CliError } from '../../src/cli/api-client';
import { parseDuration } from '../../src/cli/options';
import { loadMissionFile } from '../../src/cli/mission-file';

const dir = mkdtempSync(join(tmpdir(), 'fleet-mission-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

/** Asserts that `fn` throws a CliError whose message matches every pattern; returns the message. */
function rejects(fn: () => unknown, ...patterns: RegExp[]): string {
  let message = '';
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CliError, `expected a CliError, got ${String(err)}`);
    message = err.message;
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
  return message;
}

const GOOD_YAML = `# a mission
title: Ship the feature
maxConcurrency: 2
cwd: ./repo
sorties:
  - id: api
    type: backend
    task: Build the endpoint
    files: [src/api/**]
  - id: ui
    type: frontend
    task: Build the page
    dependsOn: [api]
    files:
      - src/ui/**
  - id: tests
    type: testing
    task: Cover both
    dependsOn: [api, ui]
    retry:
      maxAttempts: 2
`;

const GOOD_JSON = JSON.stringify(
  {
    title: 'Ship the feature',
    maxConcurrency: 2,
    cwd: 'repo',
    sorties: [
      { id: 'api', type: 'backend', task: 'Build the endpoint', files: ['src/api/**'] },
      { id: 'ui', type: 'frontend', task: 'Build the page', dependsOn: ['api'], files: ['src/ui/**'] },
      { id: 'tests', type: 'testing', task: 'Cover both', dependsOn: ['api', 'ui'], retry: { maxAttempts: 2 } },
    ],
  },
  null,
  2,
);

const sortie = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: 'backend', task: `do ${id}`, ...extra });
const jsonMission = (name: string, sorties: unknown[]) => write(name, JSON.stringify({ title: 'm', sorties }));

describe('mission files', () => {
  it('loads a YAML and a JSON file to the same request', () => {
    const fromYaml = loadMissionFile(write('mission.yaml', GOOD_YAML), '/elsewhere');
    const fromJson = loadMissionFile(write('mission.json', GOOD_JSON), '/elsewhere');
    assert.deepEqual(fromYaml, fromJson);
    assert.equal(fromYaml.cwd, join(dir, 'repo'));
    assert.equal(fromYaml.sorties.length, 3);
    assert.deepEqual(fromYaml.sorties[2]!.dependsOn, ['api', 'ui']);
    // An unknown extension is tried as JSON, then as YAML.
    assert.deepEqual(loadMissionFile(write('mission.txt', GOOD_YAML), '/elsewhere'), fromYaml);
    assert.deepEqual(loadMissionFile(write('mission', GOOD_JSON), '/elsewhere'), fromJson);
  });

  it('defaults cwd to --cwd (or the current directory) and resolves a relative one against the file', () => {
    const noCwd = write('no-cwd.yaml', 'title: t\nsorties:\n  - {id: a, type: backend, task: x, files: [src]}\n');
    assert.equal(loadMissionFile(noCwd, '/work/repo').cwd, '/work/repo');
    assert.equal(loadMissionFile(noCwd, 'relative/dir').cwd, join(process.cwd(), 'relative/dir'));
    assert.equal(loadMissionFile(noCwd).cwd, process.cwd());
    assert.equal(
      loadMissionFile(write('abs-cwd.yaml', 'title: t\ncwd: /srv/app\nsorties:\n  - {id: a, type: backend, task: x}\n'), '/work/repo').cwd,
      '/srv/app',
    );
    assert.equal(
      loadMissionFile(write('up-cwd.json', JSON.stringify({ title: 't', cwd: '../other', sorties: [sortie('a')] })), '/work/repo').cwd,
      join(dir, '..', 'other'),
    );
  });

  it('names the file, line and column of a syntax error', () => {
    const yamlFile = write('broken.yaml', 'title: t\nsorties:\n  - id: a\n    type: backend\n    task: "unterminated\n');
    const msg = rejects(() => loadMissionFile(yamlFile), /YAML syntax error/, /line \d+, column \d+/);
    assert.ok(msg.startsWith(`${yamlFile}:`), msg);
    const dupKey = write('dup-key.yml', 'title: t\nsorties:\n  - id: a\n    type: backend\n    task: x\n    task: y\n');
    rejects(
      () => loadMissionFile(dupKey),
      new RegExp(`^${dupKey.replace(/[.]/g, '\\.')}:6:5: YAML syntax error at line 6, column 5: Map keys must be unique`),
    );
    const tab = write('tab.yaml', 'title: t\nsorties:\n  - id: a\n\ttype: backend\n');
    rejects(() => loadMissionFile(tab), /tab\.yaml:4:1: YAML syntax error at line 4, column 1: Tabs are not allowed/);
    const jsonFile = write('broken.json', '{\n  "title": "t",\n  "sorties": [],\n}\n');
    rejects(() => loadMissionFile(jsonFile), new RegExp(`^${jsonFile.replace(/[.]/g, '\\.')}:4:1: JSON syntax error at line 4, column 1`));
  });

  it('rejects files that are not an object, empty or missing', () => {
    rejects(() => loadMissionFile(write('list.yaml', '- a\n- b\n')), /list\.yaml must hold an object/, /not a list/);
    rejects(() => loadMissionFile(write('scalar.json', '"mission"')), /scalar\.json must hold an object/);
    rejects(() => loadMissionFile(write('empty.yaml', '\n# nothing\n')), /empty\.yaml/);
    rejects(() => loadMissionFile(join(dir, 'missing.yaml')), /missing\.yaml: no such file/);
  });

  it('rejects a dependency cycle, naming it', () => {
    const file = jsonMission('cycle.json', [
      sortie('a', { dependsOn: ['c'] }),
      sortie('b', { dependsOn: ['a'] }),
      sortie('c', { dependsOn: ['b'] }),
    ]);
    rejects(
      () => loadMissionFile(file),
      /cycle\.json is not a valid mission/,
      /sorties\[0\]\.dependsOn: dependency cycle: a -> c -> b -> a/,
    );
  });

  it('rejects a dependency on an unknown sortie, naming the field', () => {
    const file = jsonMission('dangling.json', [sortie('a'), sortie('b', { dependsOn: ['a', 'nope'] })]);
    rejects(
      () => loadMissionFile(file),
      /sorties\[1\]\.dependsOn\[1\]: sortie "b" depends on "nope", which is not a sortie of this mission/,
    );
  });

  it('rejects a duplicate sortie id', () => {
    const file = jsonMission('dup.json', [sortie('a'), sortie('b'), sortie('a')]);
    rejects(() => loadMissionFile(file), /sorties\[2\]\.id: duplicate sortie id "a" \(also sorties\[0\]\)/);
  });

  it('rejects an unknown agent type, naming the sortie and the value', () => {
    const file = write('type.yaml', 'title: t\nsorties:\n  - id: docs\n    type: wizard\n    task: x\n');
    rejects(() => loadMissionFile(file), /sorties\[0\]\.type: .*expected one of .*"backend"/, /got "wizard"/, /sortie "docs"/);
  });

  it('reports every problem at once', () => {
    const file = write(
      'many.yaml',
      'title: t\nextra: 1\nsorties:\n  - {id: a, type: backend, task: x}\n  - {id: a, type: backend, task: y}\n',
    );
    const msg = rejects(() => loadMissionFile(file), /2 problems/, /Unrecognized key: "extra"/, /sorties\[1\]\.id: duplicate/);
    assert.equal(msg.split('\n').length, 3);
  });
});

describe('durations', () => {
  it('accepts units and plain milliseconds', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('30m'), 1_800_000);
    assert.equal(parseDuration('12h'), 43_200_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration('1500'), 1500);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('0'), 0);
  });

  it('rejects anything else with a CliError', () => {
    for (const bad of ['7 days', '-1h', '', '  ', 'h', '1y', '1e3', '12hh']) {
      assert.throws(
        () => parseDuration(bad),
        (err: unknown) => err instanceof CliError && /invalid duration/.test(err.message),
        bad,
      );
    }
  });
});
