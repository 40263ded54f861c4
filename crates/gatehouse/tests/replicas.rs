//! Team mode: three real `gatehouse serve` replicas (different ports and data directories)
//! sharing one PostgreSQL ledger — a pause on one is decided on another and released within
//! the LISTEN/NOTIFY round trip, racing decisions land exactly one (the other gets 409), an agent
//! whose replica is killed mid-wait re-attaches to another by `tool_use_id`, a deadline fires
//! once, a policy version pushed (or rolled back) on one replica decides the others' actions
//! within the NOTIFY round trip, people and dashboard logins (codes, sessions) work on any
//! replica, a grant made on one applies on the others, and an edit approved on one releases the
//! agent waiting on another with the edited input. Needs `GATEHOUSE_TEST_POSTGRES_URL` (scripts/test-postgres.sh starts a
//! throwaway cluster); without it the test says so and passes without running.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{POLICY, ServeProcess, spawn_serve};

fn request(addr: &str, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// The raw response to `GET path` with extra headers: status, head, body.
fn get_raw(addr: &str, path: &str, headers: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

/// `GET /login?code=…`: the status and the session's `Set-Cookie` value (empty if none).
fn login(addr: &str, code: &str) -> (u16, String) {
    let (status, head, _) = get_raw(addr, &format!("/login?code={code}"), "");
    let cookie = head
        .lines()
        .find_map(|line| {
            line.split_once(':')
                .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
                .map(|(_, value)| value.trim().to_owned())
        })
        .unwrap_or_default();
    (status, cookie)
}

/// `GET path` with a dashboard session cookie (`name=value`).
fn with_cookie(addr: &str, path: &str, cookie: &str) -> (u16, Value) {
    let (status, _, body) = get_raw(addr, path, &format!("Cookie: {cookie}\r\n"));
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

struct Replica {
    process: ServeProcess,
    agent: String,
    approver: String,
    _dir: tempfile::TempDir,
}

impl Replica {
    fn start(ledger_url: &str) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
        std::fs::write(
            dir.path().join("gatehouse.toml"),
            format!("[ledger]\nurl = \"{ledger_url}\"\n[approvals]\ndeadline_ms = 20000\n"),
        )
        .unwrap();
        let process = spawn_serve(dir.path(), "warn");
        let token = |name: &str| {
            std::fs::read_to_string(dir.path().join("data").join(name))
                .unwrap()
                .trim()
                .to_owned()
        };
        Replica {
            agent: token("agent.token"),
            approver: token("approver.token"),
            process,
            _dir: dir,
        }
    }

    fn addr(&self) -> String {
        self.process.addr().to_owned()
    }

    fn check(&self, command: &str, tool_use_id: &str, wait_ms: u64) -> Option<(u16, Value)> {
        let body = json!({"tool": "Bash", "input": {"command": command},
                          "session_id": "team", "tool_use_id": tool_use_id, "wait_ms": wait_ms});
        request(
            &self.addr(),
            "POST",
            "/v1/check",
            &self.agent,
            &body.to_string(),
        )
    }

    fn action(&self, id: &str) -> Value {
        let (status, body) = request(
            &self.addr(),
            "GET",
            &format!("/v1/actions/{id}"),
            &self.approver,
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    fn decide(&self, id: &str, decision: &str, hash: &Value) -> u16 {
        let body = json!({"decision": decision, "action_hash": hash});
        request(
            &self.addr(),
            "POST",
            &format!("/v1/actions/{id}/decision"),
            &self.approver,
            &body.to_string(),
        )
        .unwrap()
        .0
    }

    /// Pushes a policy version through this replica (as the owner, an admin); its number.
    fn push_policy(&self, text: &str) -> i64 {
        let (status, pushed) = request(
            &self.addr(),
            "POST",
            "/v1/policy/versions",
            &self.approver,
            &json!({"text": text}).to_string(),
        )
        .unwrap();
        assert_eq!(status, 201, "{pushed}");
        pushed["version"].as_i64().unwrap()
    }

    /// Waits until this replica has policy `version` in force (it was pushed on another), then
    /// asks it about a `Notify` call: the verdict and the policy version recorded with it.
    fn notify(&self, tool_use_id: &str, version: i64) -> (String, Option<i64>) {
        let pushed_at = Instant::now();
        loop {
            let (_, history) = request(
                &self.addr(),
                "GET",
                "/v1/policy/versions",
                &self.approver,
                "",
            )
            .unwrap();
            if history["current"].as_i64() == Some(version) {
                break;
            }
            assert!(
                pushed_at.elapsed() < Duration::from_secs(10),
                "{} never put policy version {version} in force: {history}",
                self.addr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!(
            "policy version {version} in force on {} within {:?} of the push's answer",
            self.addr(),
            pushed_at.elapsed()
        );
        let body = json!({"tool": "Notify", "input": {"text": "hi"},
                          "session_id": "team", "tool_use_id": tool_use_id, "wait_ms": 0});
        let (status, answer) = request(
            &self.addr(),
            "POST",
            "/v1/check",
            &self.agent,
            &body.to_string(),
        )
        .unwrap();
        assert_eq!(status, 200, "{answer}");
        let recorded = self.action(answer["action_id"].as_str().unwrap());
        (
            answer["verdict"].as_str().unwrap_or_default().to_owned(),
            recorded["policy_version"].as_i64(),
        )
    }

    /// The id of the pending action with this `tool_use_id`, as this replica lists it.
    fn pending_id(&self, tool_use_id: &str) -> Option<String> {
        let (_, body) = request(
            &self.addr(),
            "GET",
            "/v1/actions?status=pending&limit=100",
            &self.approver,
            "",
        )?;
        let actions = body
            .get("actions")
            .and_then(Value::as_array)
            .or(body.as_array())?
            .clone();
        actions
            .iter()
            .find(|a| a["tool_use_id"] == tool_use_id)
            .and_then(|a| a["action_id"].as_str().map(str::to_owned))
    }
}

/// Waits until `replica` lists the paused action (it was recorded on another replica).
fn await_pending(replica: &Replica, tool_use_id: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(id) = replica.pending_id(tool_use_id) {
            return id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{tool_use_id} never showed up as pending on {}",
            replica.addr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn fresh_database() -> Option<String> {
    let admin = std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let Some(admin) = admin else {
        eprintln!(
            "GATEHOUSE_TEST_POSTGRES_URL is not set: the multi-replica test did not run (scripts/test-postgres.sh runs it)"
        );
        return None;
    };
    let name = format!("gh_replicas_{}", std::process::id());
    let status = std::process::Command::new("psql")
        .args([&admin, "-q", "-c", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql runs");
    assert!(status.success());
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

fn verify(url: &str) -> String {
    let out = std::process::Command::new(support::BIN)
        .args(["ledger", "verify", "--ledger", url])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ledger verify failed: {text}");
    text
}

#[test]
fn three_replicas_share_pauses_decisions_and_deadlines() {
    let Some(url) = fresh_database() else {
        return;
    };
    let a = Replica::start(&url);
    let mut replicas = vec![Replica::start(&url), Replica::start(&url)];
    let c = replicas.pop().unwrap();
    let b = replicas.pop().unwrap();

    // 1. A pause on A is decided on B; the agent waiting on A is released.
    let waiting = {
        let a_addr = a.addr();
        let agent = a.agent.clone();
        std::thread::spawn(move || {
            let body = json!({"tool": "Bash", "input": {"command": "git push"},
                              "session_id": "team", "tool_use_id": "t1", "wait_ms": 30000});
            let answer = request(&a_addr, "POST", "/v1/check", &agent, &body.to_string());
            (answer, Instant::now())
        })
    };
    let id = await_pending(&b, "t1");
    let shown = b.action(&id);
    let decided_at = Instant::now();
    assert_eq!(b.decide(&id, "approve", &shown["action_hash"]), 200);
    let (answer, released_at) = waiting.join().unwrap();
    let (status, answer) = answer.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "allow", "{answer}");
    eprintln!(
        "decision on B released the agent waiting on A after {:?}",
        released_at.saturating_duration_since(decided_at)
    );
    // C sees it decided too: one ledger.
    assert_eq!(c.action(&id)["verdict"], "allow");

    // 2. Approve on B and deny on C at once: exactly one lands, the other gets 409.
    let (_, paused) = a.check("git push --tags", "t2", 0).unwrap();
    let id2 = paused["action_id"].as_str().unwrap().to_owned();
    let hash = paused["action_hash"].clone();
    let hash = if hash.is_null() {
        a.action(&id2)["action_hash"].clone()
    } else {
        hash
    };
    let (b_addr, b_approver) = (b.addr(), b.approver.clone());
    let (c_addr, c_approver) = (c.addr(), c.approver.clone());
    let racers = [
        (b_addr, b_approver, "approve"),
        (c_addr, c_approver, "deny"),
    ]
    .map(|(addr, token, decision)| {
        let (id, hash) = (id2.clone(), hash.clone());
        std::thread::spawn(move || {
            let body = json!({"decision": decision, "action_hash": hash});
            request(
                &addr,
                "POST",
                &format!("/v1/actions/{id}/decision"),
                &token,
                &body.to_string(),
            )
            .unwrap()
            .0
        })
    });
    let mut statuses: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409]);

    // 3. A policy pushed on A is put in force on B and C (NOTIFY), and decides their actions:
    //    each records the version that decided it. A rollback on A likewise.
    let notify_rule = |effect: &str| {
        format!("{POLICY}\n[[rules]]\nid = \"notify\"\neffect = \"{effect}\"\ntool = \"Notify\"\n")
    };
    let v1 = a.push_policy(&notify_rule("allow"));
    for replica in [&b, &c] {
        let (verdict, version) = replica.notify(&format!("n1-{}", replica.addr()), v1);
        assert_eq!((verdict.as_str(), version), ("allow", Some(v1)));
    }
    let v2 = a.push_policy(&notify_rule("reject"));
    assert_eq!(v2, v1 + 1);
    for replica in [&c, &b] {
        let (verdict, version) = replica.notify(&format!("n2-{}", replica.addr()), v2);
        assert_eq!((verdict.as_str(), version), ("reject", Some(v2)));
    }
    let (status, rolled) = request(
        &a.addr(),
        "POST",
        "/v1/policy/rollback",
        &a.approver,
        &json!({"version": v1}).to_string(),
    )
    .unwrap();
    assert_eq!(status, 201, "{rolled}");
    let v3 = rolled["version"].as_i64().unwrap();
    assert_eq!(rolled["rollback_of"], v1);
    for replica in [&b, &c] {
        let (verdict, version) = replica.notify(&format!("n3-{}", replica.addr()), v3);
        assert_eq!((verdict.as_str(), version), ("allow", Some(v3)));
    }

    // 4. People and dashboard logins work on any replica: a person added on A is let in on B;
    //    a login code B issues for them is redeemable on C, once; the session C opened is
    //    valid on A.
    let (status, added) = request(
        &a.addr(),
        "POST",
        "/v1/users",
        &a.approver,
        &json!({"name": "alice", "role": "approver"}).to_string(),
    )
    .unwrap();
    assert_eq!(status, 201, "{added}");
    let alice = added["token"].as_str().unwrap().to_owned();
    let added_at = Instant::now();
    loop {
        let (status, who) = request(&b.addr(), "GET", "/v1/whoami", &alice, "").unwrap();
        if status == 200 {
            assert_eq!(who["name"], "alice", "{who}");
            break;
        }
        assert!(
            added_at.elapsed() < Duration::from_secs(10),
            "B never let alice in: {status} {who}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "a person added on A was let in on B within {:?}",
        added_at.elapsed()
    );
    let (status, link) = request(&b.addr(), "POST", "/v1/login-codes", &alice, "").unwrap();
    assert_eq!(status, 200, "{link}");
    let code = link["url"]
        .as_str()
        .unwrap()
        .rsplit_once("code=")
        .unwrap()
        .1
        .to_owned();
    let (status, set_cookie) = login(&c.addr(), &code);
    assert_eq!(status, 303, "B's login code is redeemable on C");
    let cookie = set_cookie.split(';').next().unwrap().trim().to_owned();
    assert_eq!(login(&a.addr(), &code).0, 401, "a login code is spent once");
    assert_eq!(login(&c.addr(), &code).0, 401, "a login code is spent once");
    let opened_at = Instant::now();
    loop {
        let (status, session) = with_cookie(&a.addr(), "/v1/session", &cookie);
        if status == 200 {
            assert_eq!(session["name"], "alice", "{session}");
            assert!(
                session["csrf_token"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            );
            break;
        }
        assert!(
            opened_at.elapsed() < Duration::from_secs(10),
            "the session opened on C is never valid on A: {status} {session}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "a session opened on C was valid on A within {:?}",
        opened_at.elapsed()
    );
    assert_eq!(with_cookie(&b.addr(), "/v1/session", &cookie).0, 200);
    assert_eq!(
        with_cookie(&b.addr(), "/v1/session", "gatehouse_session=forged").0,
        401
    );

    // 5. A grant made on A applies on B; an edit-then-approve decided on B releases the agent
    //    waiting on A with the edited input.
    let deploy = |replica: &Replica, tool_use_id: &str, wait_ms: u64| {
        let body = json!({"tool": "Deploy", "input": {"target": "staging"},
                          "session_id": "team", "tool_use_id": tool_use_id, "wait_ms": wait_ms});
        request(
            &replica.addr(),
            "POST",
            "/v1/check",
            &replica.agent,
            &body.to_string(),
        )
        .unwrap()
    };
    let (_, paused) = deploy(&a, "g1", 0);
    assert_eq!(paused["verdict"], "pending", "{paused}");
    let gid = paused["action_id"].as_str().unwrap().to_owned();
    let shown = a.action(&gid);
    let (status, created) = request(
        &a.addr(),
        "POST",
        &format!("/v1/actions/{gid}/grant"),
        &a.approver,
        &json!({"action_hash": shown["action_hash"], "scope": "session", "expires": "1h"})
            .to_string(),
    )
    .unwrap();
    assert!(status == 200 || status == 201, "{status} {created}");
    let grant_id = created["grant"]["id"].as_str().unwrap().to_owned();
    let granted_at = Instant::now();
    let mut attempt = 0;
    let allowed = loop {
        attempt += 1;
        let (_, answer) = deploy(&b, &format!("g2-{attempt}"), 0);
        if answer["verdict"] == "allow" {
            break answer;
        }
        assert!(
            granted_at.elapsed() < Duration::from_secs(10),
            "B never applied A's grant: {answer}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(allowed["rule_id"], format!("grant:{grant_id}"), "{allowed}");
    eprintln!(
        "a grant made on A applied on B within {:?}",
        granted_at.elapsed()
    );

    let waiting = {
        let a_addr = a.addr();
        let agent = a.agent.clone();
        std::thread::spawn(move || {
            let body = json!({"tool": "Bash", "input": {"command": "git push --force origin main"},
                              "session_id": "team", "tool_use_id": "e1", "wait_ms": 30000});
            request(&a_addr, "POST", "/v1/check", &agent, &body.to_string())
        })
    };
    let eid = await_pending(&b, "e1");
    let shown = b.action(&eid);
    let edited = json!({"command": "git push origin main"});
    let (status, decided) = request(
        &b.addr(),
        "POST",
        &format!("/v1/actions/{eid}/decision"),
        &b.approver,
        &json!({"decision": "approve", "action_hash": shown["action_hash"], "input": edited})
            .to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{decided}");
    let (status, answer) = waiting.join().unwrap().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "allow", "{answer}");
    assert_eq!(
        answer["updated_input"], edited,
        "A's agent gets the edited input: {answer}"
    );
    let on_c = c.action(&eid);
    assert_eq!(on_c["decision"]["edit"]["edited_input"], edited, "{on_c}");
    assert_eq!(on_c["input"]["command"], "git push --force origin main");

    // 6. The agent's replica is killed mid-wait: it re-sends to another replica and re-attaches.
    let (_, paused) = c.check("git push origin main", "t3", 0).unwrap();
    let id3 = paused["action_id"].as_str().unwrap().to_owned();
    let mut c = c;
    c.process.child.kill().unwrap();
    c.process.child.wait().unwrap();
    let waiting = {
        let a_addr = a.addr();
        let agent = a.agent.clone();
        std::thread::spawn(move || {
            let body = json!({"tool": "Bash", "input": {"command": "git push origin main"},
                              "session_id": "team", "tool_use_id": "t3", "wait_ms": 30000});
            request(&a_addr, "POST", "/v1/check", &agent, &body.to_string())
        })
    };
    let shown = b.action(&id3);
    assert_eq!(shown["verdict"], "pending");
    assert_eq!(b.decide(&id3, "deny", &shown["action_hash"]), 200);
    let (status, answer) = waiting.join().unwrap().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["action_id"], id3.as_str(), "re-attached: {answer}");
    assert_eq!(answer["verdict"], "reject", "{answer}");

    // 7. A deadline fires once, whichever replica's timer gets there first.
    let (_, paused) = a.check("git push --force", "t4", 0).unwrap();
    let id4 = paused["action_id"].as_str().unwrap().to_owned();
    let (status, timed_out) = request(
        &b.addr(),
        "GET",
        &format!("/v1/actions/{id4}?wait_ms=40000"),
        &b.approver,
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{timed_out}");
    assert_eq!(timed_out["verdict"], "reject", "{timed_out}");
    assert_eq!(timed_out["decided_by"], "timeout", "{timed_out}");
    let (_, history) = request(
        &a.addr(),
        "GET",
        &format!("/v1/actions/{id4}/history"),
        &a.approver,
        "",
    )
    .unwrap();
    let entries = history
        .get("history")
        .and_then(Value::as_array)
        .or(history.as_array())
        .cloned()
        .unwrap_or_default();
    let decided = entries.iter().filter(|e| e["kind"] == "decided").count();
    assert_eq!(decided, 1, "{history}");

    drop((a, b));
    let report = verify(&url);
    eprintln!("{report}");
}
