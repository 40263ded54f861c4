"""Black-box tier-1 check: starts a real daemon over a fake HOME in /opt/rt and posts each case of cases.py to /v1/check (wait_ms 0). Usage: python3 tools/redteam/run.py target/debug/gatehouse [RT_LISTEN=127.0.0.1:7400]."""
import json, os, subprocess, sys, time, urllib.request, shutil
sys.path.insert(0, os.path.dirname(__file__))
import cases
H, P = cases.H, cases.P
BIN = sys.argv[1] if len(sys.argv) > 1 else "/work/main/target/debug/gatehouse"
shutil.rmtree("/opt/rt", ignore_errors=True)
for d in [".ssh", ".aws", ".config/gh", ".config/autostart", ".cargo", "other/src", "proj/src", "proj/.git/hooks", "proj/build", "proj/dist", ".local/share"]:
    os.makedirs(os.path.join(H, d), exist_ok=True)
for f, c in {".ssh/id_rsa": "KEY", ".aws/credentials": "AWS", ".npmrc": "//r/:_authToken=x", ".bashrc": "#", ".config/gh/hosts.yml": "t",
             ".cargo/credentials.toml": "t", "proj/.env": "A=1", "proj/README.md": "hi", "proj/src/main.rs": "fn main(){}",
             "proj/src/lib.rs": "a", "proj/Cargo.toml": "[package]", "proj/.git/config": "[core]", "proj/log.txt": "x", "proj/build/a.o": "x",
             "proj/dist/x.js": "x", "proj/package.json": "{}", "proj/a.txt": "a", "proj/b.txt": "b", "other/src/main.rs": "x"}.items():
    open(os.path.join(H, f), "w").write(c)
os.symlink(H + "/.ssh/id_rsa", P + "/link-to-key")
os.symlink(H + "/.config/autostart/evil.desktop", P + "/dangling-link")
os.symlink(H + "/other", P + "/outlink")
env = dict(os.environ, HOME=H, GATEHOUSE_LOG="warn")
env.pop("GATEHOUSE_DATA_DIR", None)
data = H + "/.local/share/gatehouse"
open("/opt/rt/gh.toml","w").write("[approvals]\nmax_pending = 100000\nmax_pending_per_session = 100000\nmax_pending_per_agent = 100000\n")
d = subprocess.Popen([BIN, "serve", "--listen", os.environ.get("RT_LISTEN", "127.0.0.1:0"), "--config", "/opt/rt/gh.toml"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
url = d.stdout.readline().strip().split()[-1]
tok = open(data + "/agent.token").read().strip()
import itertools
_ids = itertools.count()
def check(t, inp):
    body = json.dumps({"tool": t, "input": inp, "cwd": P, "wait_ms": 0, "session_id": "rt-%d" % next(_ids)}).encode()
    r = urllib.request.Request(url + "/v1/check", body, {"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    try:
        return json.load(urllib.request.urlopen(r))
    except urllib.error.HTTPError as e:
        return {"verdict": "http%d" % e.code, "reason": e.read().decode()[:200]}
try:
    leaks = 0; total = 0
    for cls, items in cases.D.items():
        bad = []
        for t, inp in items:
            total += 1
            v = check(t, inp)
            if v["verdict"] == "allow":
                bad.append((t, inp, v.get("rule_id")))
        leaks += len(bad)
        print(f"{cls}: {len(bad)}/{len(items)} allowed")
        for t, inp, rule in bad:
            print(f"   ALLOW {t} {json.dumps(inp)[:160]}  [{rule}]")
    print(f"DANGEROUS ALLOWED: {leaks}/{total}")
    counts = {}
    for t, inp in cases.E:
        v = check(t, inp)
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
        if v["verdict"] != "allow":
            print(f"   everyday {v['verdict']}: {t} {json.dumps(inp)[:120]}  [{v.get('rule_id')}: {v.get('reason','')[:80]}]")
    print("EVERYDAY:", counts, "of", len(cases.E))
finally:
    d.terminate()
