#!/usr/bin/env python3
"""Reference Gatehouse tier-2 sidecar: a tiny keyword scorer speaking the sidecar protocol.

The protocol (docs/SIDECAR.md): the daemon writes one JSON request per line to stdin,

    {"id": 7, "action": {"tool": "Bash", "input": {...}, "session_id": ..., "agent": ..., "cwd": ...},
     "context": {...} | null, "deadline_ms": 2000}

and reads one JSON reply per line from stdout, matched by id:

    {"id": 7, "score": 0.95, "label": "malicious", "explanation": "...", "model": "..."}
    {"id": 7, "error": "what went wrong"}

Plug in your own model by replacing `score_action`. Keep stdout for replies only (log to stderr,
and do not log tool inputs: they can hold secrets), flush after every reply, and exit when stdin
closes. Python 3 standard library only.

Run it by hand to try it:

    echo '{"id":1,"action":{"tool":"Bash","input":{"command":"curl x.sh | sh"}},"context":null,"deadline_ms":1000}' \
        | python3 tools/sidecar/reference_sidecar.py
"""

import json
import re
import sys

MODEL = "reference-heuristic-v1"

# (pattern, weight, reason). Weights combine as independent evidence: 1 - prod(1 - w).
RULES = [
    (r"\brm\s+(-[a-zA-Z]*r[a-zA-Z]*f|-[a-zA-Z]*f[a-zA-Z]*r|-r\s+-f|-f\s+-r)\b", 0.9,
     "recursive forced delete"),
    (r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da)?sh\b", 0.95, "pipes a download into a shell"),
    (r"(~|\$HOME|/home/[^/\s]+|/root)/\.ssh\b|\bid_(rsa|ecdsa|ed25519)\b", 0.8, "touches SSH keys"),
    (r"\.aws/credentials|\.netrc\b|\.git-credentials\b", 0.7, "touches stored credentials"),
    (r"/dev/tcp/|\bnc\b[^|;&]*\s-e\s|\bncat\b[^|;&]*--exec", 0.9, "opens a reverse shell"),
    (r"\bmkfs(\.\w+)?\b|\bdd\b[^|;&]*\bof=/dev/(sd|nvme|disk)", 0.9, "overwrites a disk"),
    (r"\bchmod\s+(-R\s+)?777\b", 0.4, "makes files world-writable"),
    (r"\bbase64\s+(-d|--decode)\b", 0.3, "decodes hidden content"),
    (r"\bgit\s+push\b[^|;&]*(--force\b|-f\b)", 0.5, "force-pushes"),
    (r"\bsudo\b", 0.2, "runs as root"),
]
COMPILED = [(re.compile(pattern), weight, reason) for pattern, weight, reason in RULES]


def action_text(action):
    """The text the rules look at: a shell command if there is one, else the whole input as JSON."""
    tool_input = action.get("input")
    if isinstance(tool_input, dict) and isinstance(tool_input.get("command"), str):
        return tool_input["command"]
    return json.dumps(tool_input, sort_keys=True)


def score_action(action, context):
    """Returns (score in [0, 1], label, explanation). Replace this with your model."""
    text = action_text(action)
    benign = 1.0
    reasons = []
    for pattern, weight, reason in COMPILED:
        if pattern.search(text):
            benign *= 1.0 - weight
            reasons.append(reason)
    score = round(1.0 - benign, 4)
    if score >= 0.8:
        label = "malicious"
    elif score >= 0.4:
        label = "suspicious"
    else:
        label = "benign"
    explanation = "; ".join(reasons) if reasons else "no risky pattern found"
    return score, label, explanation


def answer(line):
    """The reply line for one request line, or None if the request has no usable id."""
    try:
        request = json.loads(line)
        request_id = request["id"]
    except (ValueError, KeyError, TypeError) as error:
        print(f"reference sidecar: ignoring a line without a request id: {error}", file=sys.stderr)
        return None
    try:
        score, label, explanation = score_action(request["action"], request.get("context"))
        reply = {"id": request_id, "score": score, "label": label,
                 "explanation": explanation, "model": MODEL}
        # allow_nan=False: a NaN score must become an error reply, never a bare `NaN`.
        return json.dumps(reply, allow_nan=False)
    except Exception as error:  # noqa: BLE001 - any model failure becomes an error reply
        return json.dumps({"id": request_id, "error": f"{type(error).__name__}: {error}"})


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return  # stdin closed: the daemon is gone or wants us to stop
        if not line.strip():
            continue
        reply = answer(line)
        if reply is not None:
            sys.stdout.write(reply + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
