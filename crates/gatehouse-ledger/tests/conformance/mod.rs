//! The ledger conformance suite: the same test functions against every backend (SQLite always,
//! PostgreSQL when `GATEHOUSE_TEST_POSTGRES_URL` names a server). Each function gets a fresh,
//! empty ledger; what it asserts is the `Ledger` interface's contract, whatever holds it.

mod confinement;
mod grants;
mod replicas;
mod support;
mod team;

use std::collections::HashSet;

use gatehouse_ledger::{
    BrowseQuery, DecisionFact, DecisionOutcome, ListQuery, NewAction, NewLabel, NewOutcome,
    OverviewQuery, Recorded, ScoreFact, ScoreOutcome, StatusFilter, VerifyOptions,
};
use gatehouse_protocol::{DecidedBy, OutcomeFlag, ReviewLabel, Tier2Status, Verdict};
use serde_json::json;

use support::{TestBackend, conformance};

pub(crate) fn new_action(id: &str, verdict: Verdict) -> NewAction {
    NewAction {
        id: id.to_owned(),
        created_at_ms: 1_000,
        tool: "Bash".into(),
        input: json!({"command": "ls -la"}).as_object().unwrap().clone(),
        session_id: Some("s1".into()),
        agent: Some("test".into()),
        tool_use_id: Some(format!("tu-{id}")),
        cwd: Some("/tmp".into()),
        context: Some(json!({"why": "x"}).as_object().unwrap().clone()),
        verdict,
        decided_by: DecidedBy::Rule,
        rule_id: Some("r1".into()),
        reason: "because".into(),
        deadline_ms: (verdict == Verdict::Pending).then_some(i64::MAX / 2),
        tier2_status: Tier2Status::Pending,
        peer_uid: Some(1000),
        peer_pid: Some(42),
        observed_effect: None,
    }
}

pub(crate) fn decision(id: &str, verdict: Verdict) -> DecisionFact {
    DecisionFact {
        action_id: id.into(),
        decided_at_ms: 2_000,
        verdict,
        decided_by: DecidedBy::Human,
        note: Some("ok".into()),
        action_hash: None,
    }
}

conformance!(
    an_action_reads_back_as_recorded,
    a_pause_gets_exactly_one_decision,
    racing_decisions_land_exactly_one,
    a_decision_names_its_action_hash,
    a_resent_check_reattaches_by_tool_use_id,
    scores_labels_and_outcomes_are_appended,
    listing_filters_and_pages,
    the_chain_verifies_and_names_tampering,
    records_cannot_be_rewritten,
    sessions_are_listed_most_recent_first,
    the_browser_filters_and_pages,
    the_overview_counts_the_window,
);

async fn an_action_reads_back_as_recorded(backend: TestBackend) {
    let ledger = backend.open().await;
    let recorded = ledger
        .record_action(new_action("a1", Verdict::Allow))
        .await
        .unwrap();
    assert!(matches!(recorded, Recorded::Inserted));
    let view = ledger.action("a1").await.unwrap().unwrap();
    assert_eq!(view.verdict, Verdict::Allow);
    assert_eq!(view.decided_by, DecidedBy::Rule);
    assert_eq!(view.input, json!({"command": "ls -la"}));
    assert_eq!(view.context, Some(json!({"why": "x"})));
    assert_eq!(view.peer_uid, Some(1000));
    assert_eq!(view.peer_pid, Some(42));
    assert_eq!(view.action_hash.len(), 64);
    assert_eq!(view.tier2_status, Tier2Status::Pending);
    assert!(ledger.action("nope").await.unwrap().is_none());
    assert_eq!(ledger.count().await.unwrap(), 1);
    let history = ledger.history("a1").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].kind, "recorded");
}

async fn a_pause_gets_exactly_one_decision(backend: TestBackend) {
    let ledger = backend.open().await;
    ledger
        .record_action(new_action("p1", Verdict::Pending))
        .await
        .unwrap();
    ledger
        .record_action(new_action("a1", Verdict::Allow))
        .await
        .unwrap();
    let pending = ledger.pending().await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|v| v.action_id.as_str())
            .collect::<Vec<_>>(),
        ["p1"]
    );
    let first = ledger
        .record_decision(decision("p1", Verdict::Allow))
        .await
        .unwrap();
    let DecisionOutcome::Decided(view) = first else {
        panic!("the first decision must land: {first:?}");
    };
    assert_eq!(view.verdict, Verdict::Allow);
    assert_eq!(view.decided_by, DecidedBy::Human);
    let second = ledger
        .record_decision(decision("p1", Verdict::Reject))
        .await
        .unwrap();
    assert!(matches!(second, DecisionOutcome::AlreadyDecided(v) if v.verdict == Verdict::Allow));
    // Only a paused action can be decided; an unknown one is not found.
    assert!(matches!(
        ledger
            .record_decision(decision("a1", Verdict::Reject))
            .await
            .unwrap(),
        DecisionOutcome::AlreadyDecided(_)
    ));
    assert!(matches!(
        ledger
            .record_decision(decision("nope", Verdict::Reject))
            .await
            .unwrap(),
        DecisionOutcome::NotFound
    ));
    assert!(ledger.pending().await.unwrap().is_empty());
    let kinds: Vec<_> = ledger
        .history("p1")
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["recorded", "decided"]);
}

async fn racing_decisions_land_exactly_one(backend: TestBackend) {
    let ledger = backend.open().await;
    for i in 0..5 {
        ledger
            .record_action(new_action(&format!("p{i}"), Verdict::Pending))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..5 {
        for j in 0..8 {
            let ledger = ledger.clone();
            let verdict = if j % 2 == 0 {
                Verdict::Allow
            } else {
                Verdict::Reject
            };
            tasks.push(tokio::spawn(async move {
                let outcome = ledger
                    .record_decision(decision(&format!("p{i}"), verdict))
                    .await
                    .unwrap();
                (i, matches!(outcome, DecisionOutcome::Decided(_)))
            }));
        }
    }
    let mut winners = vec![0; 5];
    for task in tasks {
        let (i, won) = task.await.unwrap();
        winners[i] += usize::from(won);
    }
    assert_eq!(winners, [1, 1, 1, 1, 1]);
    ledger.verify(VerifyOptions::default()).await.unwrap();
}

async fn a_decision_names_its_action_hash(backend: TestBackend) {
    let ledger = backend.open().await;
    ledger
        .record_action(new_action("p1", Verdict::Pending))
        .await
        .unwrap();
    let view = ledger.action("p1").await.unwrap().unwrap();
    let mut wrong = decision("p1", Verdict::Allow);
    wrong.action_hash = Some([7; 32]);
    assert!(matches!(
        ledger.record_decision(wrong).await.unwrap(),
        DecisionOutcome::ActionMismatch(_)
    ));
    assert_eq!(ledger.pending().await.unwrap().len(), 1);
    let mut right = decision("p1", Verdict::Allow);
    right.action_hash = gatehouse_ledger::action_hash::from_hex(&view.action_hash);
    assert!(matches!(
        ledger.record_decision(right).await.unwrap(),
        DecisionOutcome::Decided(v) if v.decision.as_ref().and_then(|d| d.action_hash.clone()) == Some(view.action_hash.clone())
    ));
}

async fn a_resent_check_reattaches_by_tool_use_id(backend: TestBackend) {
    let ledger = backend.open().await;
    ledger
        .record_action(new_action("p1", Verdict::Pending))
        .await
        .unwrap();
    let mut again = new_action("p1-again", Verdict::Pending);
    again.tool_use_id = Some("tu-p1".into());
    match ledger.record_action(again.clone()).await.unwrap() {
        Recorded::Existing {
            action,
            same_action,
        } => {
            assert_eq!(action.action_id, "p1");
            assert!(same_action);
        }
        other => panic!("a re-sent check must re-attach: {other:?}"),
    }
    again.input = json!({"command": "rm -rf /"}).as_object().unwrap().clone();
    assert!(matches!(
        ledger.record_action(again).await.unwrap(),
        Recorded::Existing {
            same_action: false,
            ..
        }
    ));
    assert_eq!(ledger.count().await.unwrap(), 1);
}

async fn scores_labels_and_outcomes_are_appended(backend: TestBackend) {
    let ledger = backend.open().await;
    ledger
        .record_action(new_action("a1", Verdict::Allow))
        .await
        .unwrap();
    let score = |id: &str, outcome| ScoreFact {
        action_id: id.into(),
        recorded_at_ms: 1_500,
        outcome,
    };
    assert!(
        ledger
            .record_score(score(
                "a1",
                ScoreOutcome::Scored {
                    score: 0.9,
                    label: "malicious".into(),
                    model: "m1".into(),
                    explanation: Some("why".into()),
                    disagreement: true,
                }
            ))
            .await
            .unwrap()
    );
    assert!(
        !ledger
            .record_score(score("missing", ScoreOutcome::Timeout))
            .await
            .unwrap()
    );
    let view = ledger.action("a1").await.unwrap().unwrap();
    assert_eq!(view.tier2.as_ref().map(|t| t.score), Some(0.9));
    assert_eq!(view.tier2_status, Tier2Status::Scored);
    assert!(view.disagreement);
    assert!(
        ledger
            .append_label(NewLabel {
                action_id: "a1".into(),
                label: ReviewLabel::Malicious,
                reviewer: Some("ann".into()),
                note: None,
                recorded_at_ms: 3_000,
            })
            .await
            .unwrap()
    );
    let labels = ledger.labels_for("a1").await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].reviewer.as_deref(), Some("ann"));
    let outcome = |tool_use: &str| NewOutcome {
        session_id: Some("s1".into()),
        tool_use_id: Some(tool_use.into()),
        tool: "Bash".into(),
        agent: None,
        cwd: None,
        ran: true,
        exit_code: Some(0),
        error: None,
        duration_ms: Some(12),
        findings: vec!["denied x".into()],
        recorded_at_ms: 4_000,
    };
    let linked = ledger.record_outcome(outcome("tu-a1")).await.unwrap();
    assert_eq!(linked.action_id.as_deref(), Some("a1"));
    assert_eq!(linked.flag, None);
    let stray = ledger.record_outcome(outcome("tu-none")).await.unwrap();
    assert_eq!(stray.flag, Some(OutcomeFlag::Unchecked));
    let flagged = ledger.outcomes(10, true).await.unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].findings, ["denied x"]);
    let kinds: Vec<_> = ledger
        .history("a1")
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["recorded", "scored", "labelled", "outcome"]);
    let report = ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 5);
}

async fn listing_filters_and_pages(backend: TestBackend) {
    let ledger = backend.open().await;
    for (id, verdict) in [
        ("a1", Verdict::Allow),
        ("r1", Verdict::Reject),
        ("p1", Verdict::Pending),
        ("p2", Verdict::Pending),
    ] {
        ledger.record_action(new_action(id, verdict)).await.unwrap();
    }
    ledger
        .record_decision(decision("p2", Verdict::Reject))
        .await
        .unwrap();
    let ids = |views: Vec<gatehouse_protocol::ActionView>| {
        views.into_iter().map(|v| v.action_id).collect::<Vec<_>>()
    };
    let query = |status, limit, before: Option<&str>| ListQuery {
        status,
        limit,
        before: before.map(str::to_owned),
        disagreements_only: false,
    };
    assert_eq!(
        ids(ledger.list(query(None, 10, None)).await.unwrap()),
        ["p2", "p1", "r1", "a1"]
    );
    assert_eq!(
        ids(ledger.list(query(None, 2, Some("p1"))).await.unwrap()),
        ["r1", "a1"]
    );
    assert_eq!(
        ids(ledger
            .list(query(Some(StatusFilter::Pending), 10, None))
            .await
            .unwrap()),
        ["p1"]
    );
    assert_eq!(
        ids(ledger
            .list(query(Some(StatusFilter::Rejected), 10, None))
            .await
            .unwrap()),
        ["p2", "r1"]
    );
    assert_eq!(
        ids(ledger
            .list(query(Some(StatusFilter::Decided), 10, None))
            .await
            .unwrap()),
        ["p2"]
    );
}

async fn the_chain_verifies_and_names_tampering(backend: TestBackend) {
    let ledger = backend.open().await;
    for i in 0..20 {
        let verdict = if i % 3 == 0 {
            Verdict::Pending
        } else {
            Verdict::Allow
        };
        ledger
            .record_action(new_action(&format!("a{i}"), verdict))
            .await
            .unwrap();
    }
    ledger
        .record_decision(decision("a3", Verdict::Allow))
        .await
        .unwrap();
    let report = ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(report.entries, 21);
    assert_eq!(report.checked, 21);
    let tail = ledger
        .verify(VerifyOptions {
            tail: Some(5),
            ..VerifyOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(tail.checked, 5);
    // Tampering needs the append-only guards out of the way first (as an attacker with the
    // database owner's rights would): the chain still names the edited record.
    let tamper = match &backend {
        TestBackend::Sqlite(_) => {
            "DROP TRIGGER actions_append_only_update; UPDATE actions SET input = '{\"command\":\"rm\"}' WHERE id = 'a7';"
        }
        TestBackend::Postgres { .. } => {
            "ALTER TABLE actions DISABLE TRIGGER USER; UPDATE actions SET input = '{\"command\":\"rm\"}' WHERE id = 'a7';"
        }
    };
    backend.raw(tamper).await.unwrap();
    let failure = ledger
        .verify(VerifyOptions::default())
        .await
        .expect_err("an edited record must fail verification");
    assert_eq!(failure.chain_seq, Some(8), "{failure}");
    assert!(failure.detail.contains("a7"), "{failure}");
}

async fn records_cannot_be_rewritten(backend: TestBackend) {
    let ledger = backend.open().await;
    ledger
        .record_action(new_action("p1", Verdict::Pending))
        .await
        .unwrap();
    ledger
        .record_decision(decision("p1", Verdict::Allow))
        .await
        .unwrap();
    let mut refused = HashSet::new();
    for sql in [
        "UPDATE actions SET tool = 'Read'",
        "DELETE FROM actions",
        "UPDATE decisions SET verdict = 'reject'",
        "DELETE FROM decisions",
        "DELETE FROM chain",
        "UPDATE chain SET kind = 'x'",
    ] {
        let err = backend
            .raw(sql)
            .await
            .expect_err("the ledger must refuse rewriting");
        assert!(err.contains("append-only"), "{sql}: {err}");
        refused.insert(sql);
    }
    assert_eq!(refused.len(), 6);
    if let TestBackend::Postgres { .. } = backend {
        let err = backend.raw("TRUNCATE decisions").await.unwrap_err();
        assert!(err.contains("append-only"), "{err}");
    }
    ledger.verify(VerifyOptions::default()).await.unwrap();
    assert_eq!(
        ledger.action("p1").await.unwrap().unwrap().verdict,
        Verdict::Allow
    );
}

/// A session's id, first and last times, actions, allowed, rejected, paused, pending.
type SessionCounts<'a> = (&'a str, i64, i64, u64, u64, u64, u64, u64);

async fn sessions_are_listed_most_recent_first(backend: TestBackend) {
    let ledger = backend.open().await;
    for (id, session, verdict, at) in [
        ("s1-a", "s1", Verdict::Allow, 1_000),
        ("s1-b", "s1", Verdict::Reject, 1_100),
        ("s1-c", "s1", Verdict::Pending, 1_200),
        ("s1-d", "s1", Verdict::Pending, 1_300),
        ("s2-a", "s2", Verdict::Allow, 2_000),
    ] {
        let mut action = new_action(id, verdict);
        action.session_id = Some(session.into());
        action.created_at_ms = at;
        ledger.record_action(action).await.unwrap();
    }
    ledger
        .record_decision(decision("s1-d", Verdict::Allow))
        .await
        .unwrap();
    let list = ledger.sessions(10, None).await.unwrap();
    let seen: Vec<SessionCounts<'_>> = list
        .sessions
        .iter()
        .map(|s| {
            (
                s.session_id.as_str(),
                s.first_ms,
                s.last_ms,
                s.actions,
                s.allowed,
                s.rejected,
                s.paused,
                s.pending,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("s2", 2_000, 2_000, 1, 1, 0, 0, 0),
            ("s1", 1_000, 1_300, 4, 2, 1, 2, 1)
        ]
    );
    assert_eq!(list.sessions[0].agent.as_deref(), Some("test"));
    assert_eq!(list.next_cursor, None);
    let first = ledger.sessions(1, None).await.unwrap();
    assert_eq!(first.sessions[0].session_id, "s2");
    let cursor = first.next_cursor.unwrap();
    let (ms, id) = cursor.split_once(':').unwrap();
    let second = ledger
        .sessions(1, Some((ms.parse().unwrap(), id.to_owned())))
        .await
        .unwrap();
    assert_eq!(second.sessions[0].session_id, "s1");
}

async fn the_browser_filters_and_pages(backend: TestBackend) {
    let ledger = backend.open().await;
    for i in 0..12 {
        let verdict = match i % 3 {
            0 => Verdict::Allow,
            1 => Verdict::Reject,
            _ => Verdict::Pending,
        };
        let mut action = new_action(&format!("b{i:02}"), verdict);
        action.created_at_ms = 1_000 + i;
        action.cwd = Some(if i < 6 {
            "/work/app".into()
        } else {
            "/work/other".into()
        });
        if i == 4 {
            action.input = json!({"command": "echo \"Hello\""})
                .as_object()
                .unwrap()
                .clone();
            action.tool = "Shell".into();
        }
        ledger.record_action(action).await.unwrap();
    }
    ledger
        .record_decision(decision("b02", Verdict::Allow))
        .await
        .unwrap();
    ledger
        .record_outcome(NewOutcome {
            session_id: Some("s1".into()),
            tool_use_id: Some("tu-b00".into()),
            tool: "Bash".into(),
            agent: None,
            cwd: None,
            ran: true,
            exit_code: Some(0),
            error: None,
            duration_ms: Some(7),
            findings: Vec::new(),
            recorded_at_ms: 5_000,
        })
        .await
        .unwrap();
    let browse = |q: BrowseQuery| {
        let ledger = ledger.clone();
        async move { ledger.browse(q).await.unwrap() }
    };
    let base = || BrowseQuery {
        limit: 50,
        ..BrowseQuery::default()
    };
    let ids = |page: &gatehouse_protocol::BrowsePage| -> Vec<String> {
        page.rows
            .iter()
            .map(|r| r.action.action_id.clone())
            .collect()
    };
    let all = browse(base()).await;
    assert_eq!(all.rows.len(), 12);
    assert_eq!(all.rows[0].action.action_id, "b11", "newest first");
    assert_eq!(all.next_cursor, None);
    let oldest = all.rows.last().unwrap();
    assert_eq!(
        oldest.outcome.as_ref().map(|o| (o.ran, o.duration_ms)),
        Some((true, Some(7)))
    );
    // Still waiting: the paused ones but b02 (decided).
    let pending = browse(BrowseQuery {
        verdict: Some(Verdict::Pending),
        ..base()
    })
    .await;
    assert_eq!(ids(&pending), ["b11", "b08", "b05"]);
    let allowed_by_people = browse(BrowseQuery {
        verdict: Some(Verdict::Allow),
        decided_by: Some(DecidedBy::Human),
        ..base()
    })
    .await;
    assert_eq!(ids(&allowed_by_people), ["b02"]);
    let in_app = browse(BrowseQuery {
        cwd: Some("/work/app/".into()),
        paused: Some(false),
        ..base()
    })
    .await;
    assert_eq!(ids(&in_app), ["b04", "b03", "b01", "b00"]);
    // Words in the input, whatever their case and JSON escaping.
    let said = browse(BrowseQuery {
        text: Some("echo \"hello".into()),
        ..base()
    })
    .await;
    assert_eq!(ids(&said), ["b04"]);
    let shell = browse(BrowseQuery {
        tool: Some("Shell".into()),
        since_ms: Some(1_004),
        until_ms: Some(1_005),
        ..base()
    })
    .await;
    assert_eq!(ids(&shell), ["b04"]);
    // Pages of 5, oldest first, cover every row once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = browse(BrowseQuery {
            ascending: true,
            limit: 5,
            cursor,
            ..base()
        })
        .await;
        seen.extend(ids(&page));
        match page.next_cursor {
            Some(next) => cursor = Some(next.parse().unwrap()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..12).map(|i| format!("b{i:02}")).collect();
    assert_eq!(seen, expected);
}

async fn the_overview_counts_the_window(backend: TestBackend) {
    let ledger = backend.open().await;
    for (id, verdict, at, rule) in [
        ("a1", Verdict::Allow, 1_000, "r1"),
        ("p1", Verdict::Pending, 1_500, "r1"),
        ("a2", Verdict::Reject, 2_000, "r1"),
        ("p2", Verdict::Pending, 6_000, "r1"),
        ("g1", Verdict::Allow, 7_000, "grant:x"),
        ("late", Verdict::Allow, 20_000, "r1"),
    ] {
        let mut action = new_action(id, verdict);
        action.created_at_ms = at;
        action.rule_id = Some(rule.into());
        ledger.record_action(action).await.unwrap();
    }
    ledger
        .record_decision(decision("p1", Verdict::Allow))
        .await
        .unwrap();
    let overview = ledger
        .overview(OverviewQuery {
            since_ms: 0,
            until_ms: 10_000,
            bucket_ms: 5_000,
        })
        .await
        .unwrap();
    assert_eq!(overview.total, 5);
    let buckets: Vec<(i64, u64, u64, u64, u64)> = overview
        .buckets
        .iter()
        .map(|b| (b.start_ms, b.allowed, b.rejected, b.approved, b.pending))
        .collect();
    assert_eq!(buckets, [(0, 1, 1, 1, 0), (5_000, 1, 0, 0, 1)]);
    assert_eq!(overview.pending_now, 1);
    assert_eq!(overview.latency.decisions, 1);
    assert_eq!(overview.latency.median_ms, Some(500));
    let rules: Vec<(&str, u64, u64, u64, u64)> = overview
        .top_rules
        .iter()
        .map(|t| (t.key.as_str(), t.count, t.allowed, t.rejected, t.paused))
        .collect();
    assert_eq!(rules, [("r1", 4, 2, 1, 2), ("grant:x", 1, 1, 0, 0)]);
    let paused: Vec<(&str, u64, u64)> = overview
        .top_paused
        .iter()
        .map(|t| (t.key.as_str(), t.count, t.allowed))
        .collect();
    assert_eq!(paused, [("Bash: ls -la", 2, 1)]);
    assert_eq!(overview.classifier.waiting, 5);
    assert_eq!((overview.prompts.prompts, overview.prompts.granted), (2, 1));
}
