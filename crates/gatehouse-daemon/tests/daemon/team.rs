//! Named approvers against a real daemon: users with roles and their own tokens, every answer
//! recorded under its person's name, reviewers who label but cannot decide, and a rule with
//! `approvals = 2` that needs two different people.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Setup, TEST_POLICY, TestDaemon};

fn team_policy() -> String {
    format!(
        r#"{TEST_POLICY}
[[rules]]
id = "two-person-deploy"
effect = "pause"
tool = "Deploy"
reason = "production deploys need two people"
approvals = 2
"#
    )
}

async fn team_daemon() -> TestDaemon {
    Setup {
        policy: team_policy(),
        ..Setup::default()
    }
    .start()
    .await
}

/// Adds a user with the owner's token; returns their token.
async fn add_user(daemon: &TestDaemon, name: &str, role: &str) -> String {
    let (status, body) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/users",
            json!({"name": name, "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["name"], name);
    assert_eq!(body["user"]["added_by"], "owner");
    body["token"].as_str().unwrap().to_owned()
}

async fn answer(daemon: &TestDaemon, token: &str, id: &str, decision: &str) -> (StatusCode, Value) {
    let shown = daemon.action(id).await;
    daemon
        .post(
            token,
            &format!("/v1/actions/{id}/decision"),
            json!({"decision": decision, "action_hash": shown["action_hash"]}),
        )
        .await
}

async fn pause(daemon: &TestDaemon, tool: &str, input: Value) -> String {
    let (status, body) = daemon
        .check(json!({"tool": tool, "input": input, "wait_ms": 0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "pending", "{body}");
    body["action_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn people_have_their_own_tokens_and_roles() {
    let daemon = team_daemon().await;
    let alice = add_user(&daemon, "alice", "approver").await;
    let rita = add_user(&daemon, "rita", "reviewer").await;
    let (status, me) = daemon.get(&alice, "/v1/whoami").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, json!({"name": "alice", "role": "approver"}));
    let (_, me) = daemon.get(&daemon.approver.clone(), "/v1/whoami").await;
    assert_eq!(me, json!({"name": "owner", "role": "admin"}));

    // A name is taken once; only an admin manages users; bad names are refused.
    let (status, body) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/users",
            json!({"name": "alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "user_exists");
    let (status, body) = daemon
        .post(
            &alice,
            "/v1/users",
            json!({"name": "mallory", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = daemon.get(&alice, "/v1/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = daemon
        .post(
            &daemon.approver.clone(),
            "/v1/users",
            json!({"name": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "name");
    let (status, body) = daemon
        .post(
            &daemon.agent.clone(),
            "/v1/users",
            json!({"name": "sneaky"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the agent token adds nobody: {body}"
    );

    let (_, list) = daemon.get(&daemon.approver.clone(), "/v1/users").await;
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "rita"]);
    assert!(
        !list.to_string().contains(&alice),
        "tokens are never listed"
    );

    // A reviewer labels but cannot decide; an approver's decision carries their name.
    let id = pause(&daemon, "Bash", json!({"command": "git push origin main"})).await;
    let (status, body) = answer(&daemon, &rita, &id, "approve").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden_role");
    assert_eq!(daemon.action(&id).await["verdict"], "pending");
    let (status, body) = daemon
        .post(
            &rita,
            &format!("/v1/actions/{id}/label"),
            json!({"label": "benign"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["label"]["reviewer"], "rita");
    let (status, decided) = answer(&daemon, &alice, &id, "approve").await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["verdict"], "allow");
    assert_eq!(decided["decision"]["approver"], "alice");
    assert_eq!(decided["approvals"][0]["approver"], "alice");
    let (_, history) = daemon
        .get(
            &daemon.approver.clone(),
            &format!("/v1/actions/{id}/history"),
        )
        .await;
    let decided_entry = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "decided")
        .cloned()
        .unwrap();
    assert_eq!(decided_entry["detail"]["approver"], "alice");
    // Recorded in the ledger as a chained approval.
    assert_eq!(
        daemon.count("SELECT count(*) FROM approvals WHERE approver = 'alice'"),
        1
    );
    assert_eq!(
        daemon.count("SELECT count(*) FROM chain WHERE kind IN ('user', 'approval')"),
        3
    );
    assert!(
        daemon
            .metrics()
            .await
            .contains("gatehouse_approver_answers_total{approver=\"alice\"} 1")
    );

    // A removed person's token stops working at once; their past answers stay.
    let status = daemon
        .http
        .delete(daemon.url("/v1/users/alice"))
        .bearer_auth(&daemon.approver)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let (status, _) = daemon.get(&alice, "/v1/whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(daemon.action(&id).await["decision"]["approver"], "alice");
}

#[tokio::test]
async fn a_two_person_rule_needs_two_different_approvers() {
    let daemon = team_daemon().await;
    let alice = add_user(&daemon, "alice", "approver").await;
    let bob = add_user(&daemon, "bob", "approver").await;
    let id = pause(&daemon, "Deploy", json!({"target": "production"})).await;

    // The agent waits; the first approval is recorded and the action stays pending.
    let agent_wait = {
        let http = daemon.http.clone();
        let url = daemon.url(&format!("/v1/actions/{id}?wait_ms=30000"));
        let token = daemon.agent.clone();
        tokio::spawn(async move {
            let response = http.get(url).bearer_auth(token).send().await.unwrap();
            response.json::<Value>().await.unwrap()
        })
    };
    let (status, first) = answer(&daemon, &alice, &id, "approve").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["verdict"], "pending");
    assert_eq!(first["approvals"].as_array().unwrap().len(), 1);
    assert!(
        !agent_wait.is_finished(),
        "one approval does not release the agent"
    );

    // The same person cannot approve twice.
    let (status, again) = answer(&daemon, &alice, &id, "approve").await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["code"], "already_approved");
    assert_eq!(daemon.action(&id).await["verdict"], "pending");

    // A second person decides it.
    let (status, second) = answer(&daemon, &bob, &id, "approve").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["verdict"], "allow");
    assert_eq!(second["decision"]["approver"], "bob");
    let approvers: Vec<&str> = second["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approver"].as_str().unwrap())
        .collect();
    assert_eq!(approvers, ["alice", "bob"]);
    let released = agent_wait.await.unwrap();
    assert_eq!(released["verdict"], "allow", "{released}");

    // A denial by anyone decides at once, even after a first approval.
    let id = pause(&daemon, "Deploy", json!({"target": "staging"})).await;
    let (status, _) = answer(&daemon, &alice, &id, "approve").await;
    assert_eq!(status, StatusCode::OK);
    let (status, denied) = answer(&daemon, &daemon.approver.clone(), &id, "deny").await;
    assert_eq!(status, StatusCode::OK, "{denied}");
    assert_eq!(denied["verdict"], "reject");
    assert_eq!(denied["decision"]["approver"], "owner");
    let (status, late) = answer(&daemon, &bob, &id, "approve").await;
    assert_eq!(status, StatusCode::CONFLICT, "{late}");
    assert_eq!(
        daemon.count("SELECT count(*) FROM decisions"),
        2,
        "each action has its one decision"
    );
}

#[tokio::test]
async fn users_survive_a_restart() {
    let daemon = team_daemon().await;
    let carol = add_user(&daemon, "carol", "admin").await;
    let dir = daemon.stop().await;
    let daemon = Setup {
        policy: team_policy(),
        ..Setup::default()
    }
    .data_dir(dir)
    .start()
    .await;
    let (status, me) = daemon.get(&carol, "/v1/whoami").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "admin");
    // An admin person manages users too.
    let (status, body) = daemon
        .post(
            &carol,
            "/v1/users",
            json!({"name": "dave", "role": "reviewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["added_by"], "carol");
}

#[tokio::test]
async fn policy_versions_are_pushed_recorded_and_rolled_back() {
    let daemon = team_daemon().await;
    let owner = daemon.approver.clone();
    let alice = add_user(&daemon, "alice", "approver").await;
    // Version 2 allows pushes (a `Push` tool: judged by its rule alone, no shell analysis): the
    // pause rule gives way to an allow rule. Version 1 pauses them by the policy's default.
    let pause_push = "[[rules]]\nid = \"pause-push\"\neffect = \"pause\"\ntool = \"Bash\"\nreason = \"pushes leave the machine\"\n[[rules.args]]\npointer = \"/command\"\nprefix = \"git push\"\n";
    let push_allowed = team_policy().replacen(
        pause_push,
        "[[rules]]\nid = \"allow-push\"\neffect = \"allow\"\ntool = \"Push\"\n",
        1,
    );
    assert_ne!(push_allowed, team_policy());
    let push = |text: String| json!({ "text": text });
    let a_push = || json!({"tool": "Push", "input": {"remote": "origin"}, "wait_ms": 0});

    // Only an admin pushes; a policy that does not load is refused and changes nothing.
    let (status, body) = daemon
        .post(&alice, "/v1/policy/versions", push(push_allowed.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = daemon
        .post(
            &owner,
            "/v1/policy/versions",
            push("default = \"maybe\"".into()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "text");
    assert_eq!(daemon.count("SELECT count(*) FROM policy_versions"), 0);

    // Version 1 is the file's policy; version 2 allows pushes, at once.
    let (status, v1) = daemon
        .post(&owner, "/v1/policy/versions", push(team_policy()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["pushed_by"], "owner");
    let (_, paused) = daemon.check(a_push()).await;
    assert_eq!(paused["verdict"], "pending");
    let (status, v2) = daemon
        .post(&owner, "/v1/policy/versions", push(push_allowed))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);
    let (_, allowed) = daemon.check(a_push()).await;
    assert_eq!(allowed["verdict"], "allow", "{allowed}");
    assert_eq!(allowed["rule_id"], "allow-push");
    // Every action records the pushed version that decided it.
    let decided_by_v2 = daemon.action(allowed["action_id"].as_str().unwrap()).await;
    assert_eq!(decided_by_v2["policy_version"], 2, "{decided_by_v2}");
    let decided_by_v1 = daemon.action(paused["action_id"].as_str().unwrap()).await;
    assert_eq!(decided_by_v1["policy_version"], 1, "{decided_by_v1}");
    assert_eq!(
        daemon.count("SELECT count(*) FROM chain WHERE kind = 'action_policy'"),
        2
    );
    let health = daemon.get(&owner, "/healthz").await.1;
    assert_eq!(health["policy"], "ledger policy version 2", "{health}");

    // The history says who and when, with the diff.
    let (_, history) = daemon.get(&alice, "/v1/policy/versions?diff=true").await;
    assert_eq!(history["current"], 2);
    assert_eq!(history["versions"][0]["version"], 2);
    let diff = history["versions"][0]["diff"].as_str().unwrap();
    assert!(diff.contains("+id = \"allow-push\""), "{diff}");
    assert!(diff.contains("-id = \"pause-push\""), "{diff}");
    assert!(
        diff.contains(" id = \"allow-read\""),
        "kept lines stay: {diff}"
    );

    // Rolling back pushes version 1's text again as version 3.
    let (status, v3) = daemon
        .post(&owner, "/v1/policy/rollback", json!({"version": 1}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v3}");
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["rollback_of"], 1);
    let (_, paused) = daemon.check(a_push()).await;
    assert_eq!(paused["verdict"], "pending");
    let (status, missing) = daemon
        .post(&owner, "/v1/policy/rollback", json!({"version": 99}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let (_, text) = daemon.get(&owner, "/v1/policy/versions/2").await;
    assert!(text["text"].as_str().unwrap().contains("allow-push"));
    assert_eq!(
        daemon.count("SELECT count(*) FROM chain WHERE kind = 'policy'"),
        3
    );

    // After a restart the latest version is still the policy in force, not the file.
    let dir = daemon.stop().await;
    let daemon = Setup {
        policy: TEST_POLICY.to_owned(),
        ..Setup::default()
    }
    .data_dir(dir)
    .start()
    .await;
    let health = daemon.get(&daemon.approver.clone(), "/healthz").await.1;
    assert_eq!(health["policy"], "ledger policy version 3", "{health}");
    let (_, deploy) = daemon
        .check(json!({"tool": "Deploy", "input": {}, "wait_ms": 0}))
        .await;
    assert_eq!(deploy["rule_id"], "two-person-deploy", "{deploy}");
}
