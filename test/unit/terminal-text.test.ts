/**
 * What the CLI prints of what an agent wrote: terminal control sequences removed (terminalSafe), the layout of
 * tables kept when a cell holds newlines or tabs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonText, table, terminalSafe, terminalSafeDeep } from '../../src/cli/format';
import { log } from '../../src/logs/logger';

/** Any C0 control but \t and \n, DEL, any C1 control. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

describe('terminalSafe', () => {
  const cases: [string, string, string][] = [
    ['clear screen and home', 'a\x1b[2J\x1b[Hb', 'ab'],
    ['colours (SGR)', '\x1b[31mred\x1b[0m', 'red'],
    ['window title (OSC 0, BEL)', '\x1b]0;pwned\x07title', 'title'],
    ['OSC 52 clipboard write (ST)', 'x\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x1b\\y', 'xy'],
    ['hyperlink (OSC 8)', '\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\', 'link'],
    ['DCS string', 'a\x1bPq#0;2;0;0;0\x1b\\b', 'ab'],
    ['8-bit CSI and OSC', 'a\x9b2Jb\x9d0;t\x9cc', 'abc'],
    ['reset (ESC c) and charset (ESC ( 0)', '\x1bca\x1b(0b', 'ab'],
    ['ESC with the byte it escapes, BEL, backspace, NUL, DEL, a last ESC', '\x1bMa\x07b\x08c\x00d\x7fe\x1b', 'abcde'],
    ['an unterminated OSC leaves its text, no ESC', '\x1b]52;c;abc', '52;c;abc'],
    ['CR and CRLF become newlines', 'a\rb\r\nc', 'a\nb\nc'],
    ['tabs and newlines stay', 'a\tb\nc', 'a\tb\nc'],
    ['plain text and Unicode are unchanged', 'déjà vu ✓ 日本', 'déjà vu ✓ 日本'],
  ];
  for (const [what, input, expected] of cases) {
    it(what, () => {
      const out = terminalSafe(input);
      assert.equal(out, expected);
      assert.ok(!CONTROL.test(out));
    });
  }

  it('no control character survives any mix of sequences (random strings of controls and text)', () => {
    const alphabet = ['\x1b', '[', ']', 'P', '\\', '\x07', '\x9b', '\x9c', '\x9d', '0', ';', 'm', 'a', '\r', '\n', '\x08', '\x00'];
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 2000; i++) {
      const s = Array.from({ length: 1 + Math.floor(rand() * 30) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
      assert.ok(!CONTROL.test(terminalSafe(s)), JSON.stringify(s));
    }
  });

  it('terminalSafeDeep cleans every string of an object, keys too, and leaves other values', () => {
    const v = { a: '\x1b[2Jx', n: 3, b: null, list: ['\x07y', { c: '\x1b]0;t\x07z' }], ['k\x1b[1m']: true };
    assert.deepEqual(terminalSafeDeep(v), { a: 'x', n: 3, b: null, list: ['y', { c: 'z' }], k: true });
  });
});

describe('jsonText (--json)', () => {
  it('escapes every control character, DEL and C1 too, and parses back to the same data', () => {
    const v = { message: `a${'\x1b[2J\x9b31m\x7f\x85\x07'}b`, n: [1, null] };
    const text = jsonText(v, 2);
    assert.ok(!CONTROL.test(text), text);
    assert.deepEqual(JSON.parse(text), v);
    assert.match(text, /\\u009b31m/);
  });

  it("the structured logs (fleet up's, the worker's) quote an agent's text the same way", () => {
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => lines.push(chunk) > 0) as typeof process.stderr.write;
    try {
      log.warn('agent said', { text: '\x9b2J\x1b]52;c;aGk=\x07' });
    } finally {
      process.stderr.write = write;
    }
    assert.equal(lines.length, 1);
    assert.ok(!CONTROL.test(lines[0]!.trimEnd()), lines[0]);
    assert.equal(JSON.parse(lines[0]!).text, '\x9b2J\x1b]52;c;aGk=\x07');
  });
});

describe('table with what agents wrote in its cells', () => {
  it('a newline in the last column goes on under it; elsewhere it is a space; tabs are spaces', () => {
    const out = table([
      ['Progress', 'line one\nline two'],
      ['Task', 'a\tb'],
      ['X\nY', 'z'],
    ]);
    assert.equal(out, ['Progress  line one', '          line two', 'Task      a b', 'X Y       z'].join('\n'));
  });
});
