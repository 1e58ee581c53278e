"""
Schemathesis hooks for test/chaos/api-fuzz.test.ts (loaded through SCHEMATHESIS_HOOKS).

The fuzzer sends real requests to a real API whose worker really runs the agents it is asked to
spawn: POST /agents/spawn runs `command`, POST /missions runs each sortie's `command`, and a
checkpoint imported through POST /checkpoints/import runs its mission's sorties' commands when it
is resumed. A generated argv could name any program on this machine, and a generated `cwd` any
directory (a `worktree: true` agent creates a git branch and worktree in the repository at its cwd).

So, just before each request is sent (every phase: examples, coverage, fuzzing, stateful), every
JSON body is walked, and wherever it has
  - `command`: a list whose first element is a valid argv[0] (a string without NUL of at most
    100,000 characters), that first element becomes FUZZ_SAFE_EXECUTABLE (/usr/bin/true, which
    ignores its arguments and exits 0); the other elements stay as generated, so that the array
    is exactly as valid or invalid as it was;
  - `cwd`: a valid string (no NUL, 1 to 4,096 characters), it becomes FUZZ_SAFE_CWD (an empty
    temporary directory, not a git repository) when it is absolute, or "." (the test's process
    runs in that same directory) when it is relative: again as valid or invalid as before.
Everything else (types, tasks, env, retry policies, runtimes, worktree, queues...) stays fuzzed.
An agent of a CLI runtime (claude-code, codex, ...) fails at once: the test's worker has every
CLI runtime's executable configured to a path that does not exist.

Each rewrite is counted in FUZZ_HOOK_LOG (one line per request rewritten), so the test can show
that the hook was loaded and did its work.
"""

import os

import schemathesis

SAFE_EXECUTABLE = os.environ["FUZZ_SAFE_EXECUTABLE"]
SAFE_CWD = os.environ["FUZZ_SAFE_CWD"]
HOOK_LOG = os.environ.get("FUZZ_HOOK_LOG")


def _valid_string(value, max_len):
    return isinstance(value, str) and 1 <= len(value) <= max_len and "\x00" not in value


def _make_safe(node):
    """Rewrites `command` and `cwd` fields in place, anywhere in the body; returns how many."""
    rewrites = 0
    if isinstance(node, dict):
        command = node.get("command")
        if isinstance(command, list) and command and _valid_string(command[0], 100_000):
            command[0] = SAFE_EXECUTABLE
            rewrites += 1
        cwd = node.get("cwd")
        if _valid_string(cwd, 4096):
            node["cwd"] = SAFE_CWD if cwd.startswith("/") else "."
            rewrites += 1
        for value in node.values():
            rewrites += _make_safe(value)
    elif isinstance(node, list):
        for value in node:
            rewrites += _make_safe(value)
    return rewrites


@schemathesis.hook
def before_call(context, case, kwargs):
    body = getattr(case, "body", None)
    if not isinstance(body, (dict, list)):
        return
    rewrites = _make_safe(body)
    if rewrites and HOOK_LOG:
        with open(HOOK_LOG, "a", encoding="utf-8") as f:
            f.write(f"{case.method} {case.path} {rewrites}\n")
