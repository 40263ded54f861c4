//! The console's reads against a real SQLite ledger: the browser's filters, search and keyset
//! paging (with its scan bound), the session list, and the overview's figures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test"
)]

use gatehouse_ledger::{
    BrowseQuery, DecisionFact, Ledger, LedgerConfig, NewAction, OverviewQuery, ScoreFact,
    ScoreOutcome,
};
use gatehouse_protocol::{DecidedBy, Tier2Status, Verdict};
use serde_json::{Value, json};

fn open(dir: &tempfile::TempDir) -> Ledger {
    Ledger::open(LedgerConfig::new(dir.path().join("ledger.db"))).unwrap()
}

struct Seed<'a> {
    id: &'a str,
    at: i64,
    tool: &'a str,
    input: Value,
    session: &'a str,
    cwd: &'a str,
    verdict: Verdict,
    rule: Option<&'a str>,
}

fn action(s: &Seed<'_>) -> NewAction {
    NewAction {
        id: s.id.to_owned(),
        created_at_ms: s.at,
        tool: s.tool.into(),
        input: s.input.as_object().unwrap().clone(),
        session_id: Some(s.session.into()),
        agent: Some(format!("agent-{}", s.session)),
        tool_use_id: None,
        cwd: Some(s.cwd.into()),
        context: None,
        verdict: s.verdict,
        decided_by: if s.rule.is_some() {
            DecidedBy::Rule
        } else {
            DecidedBy::Default
        },
        rule_id: s.rule.map(str::to_owned),
        reason: "because".into(),
        deadline_ms: (s.verdict == Verdict::Pending).then_some(s.at + 60_000),
        tier2_status: Tier2Status::Pending,
        peer_uid: None,
        peer_pid: None,
        observed_effect: None,
    }
}

fn decision(id: &str, at: i64, verdict: Verdict) -> DecisionFact {
    DecisionFact {
        action_id: id.into(),
        decided_at_ms: at,
        verdict,
        decided_by: DecidedBy::Human,
        note: Some("checked".into()),
        action_hash: None,
    }
}

const HOUR: i64 = 3_600_000;

/// Eight actions over two hours in two sessions and two projects; three paused (one approved
/// after 10 s, one denied after 30 s, one still waiting); scores on some.
async fn seed(ledger: &Ledger) {
    let bash = |c: &str| json!({ "command": c });
    let read = |p: &str| json!({ "file_path": p });
    let seeds = [
        Seed {
            id: "a1",
            at: 1_000,
            tool: "Read",
            input: read("/p/alpha/a.rs"),
            session: "s1",
            cwd: "/p/alpha",
            verdict: Verdict::Allow,
            rule: Some("read-ok"),
        },
        Seed {
            id: "a2",
            at: 2_000,
            tool: "Bash",
            input: bash("echo \"needle\" 100%"),
            session: "s1",
            cwd: "/p/alpha/sub",
            verdict: Verdict::Allow,
            rule: Some("echo-ok"),
        },
        Seed {
            id: "a3",
            at: 3_000,
            tool: "Bash",
            input: bash("rm -rf /"),
            session: "s1",
            cwd: "/p/alpha",
            verdict: Verdict::Reject,
            rule: Some("no-rm"),
        },
        Seed {
            id: "a4",
            at: 4_000,
            tool: "Bash",
            input: bash("cargo publish"),
            session: "s1",
            cwd: "/p/alpha",
            verdict: Verdict::Pending,
            rule: None,
        },
        Seed {
            id: "a5",
            at: HOUR + 1_000,
            tool: "Bash",
            input: bash("cargo publish"),
            session: "s2",
            cwd: "/p/alphabet",
            verdict: Verdict::Pending,
            rule: None,
        },
        Seed {
            id: "a6",
            at: HOUR + 2_000,
            tool: "Bash",
            input: bash("git push"),
            session: "s2",
            cwd: "/p/alphabet",
            verdict: Verdict::Pending,
            rule: None,
        },
        Seed {
            id: "a7",
            at: HOUR + 3_000,
            tool: "Read",
            input: read("/p/alphabet/file_1"),
            session: "s2",
            cwd: "/p/alphabet",
            verdict: Verdict::Allow,
            rule: Some("read-ok"),
        },
        Seed {
            id: "a8",
            at: HOUR + 4_000,
            tool: "Read",
            input: read("/p/alphabet/fileX1"),
            session: "s2",
            cwd: "/p/alphabet",
            verdict: Verdict::Allow,
            rule: Some("read-ok"),
        },
    ];
    for s in &seeds {
        ledger.record_action(action(s)).await.unwrap();
    }
    for (id, score) in [("a1", 0.1), ("a3", 0.95), ("a7", 0.5)] {
        ledger
            .record_score(ScoreFact {
                action_id: id.into(),
                recorded_at_ms: 5_000,
                outcome: ScoreOutcome::Scored {
                    score,
                    label: "x".into(),
                    model: "fixed".into(),
                    explanation: None,
                    disagreement: false,
                },
            })
            .await
            .unwrap();
    }
    ledger
        .record_decision(decision("a4", 14_000, Verdict::Allow))
        .await
        .unwrap();
    ledger
        .record_decision(decision("a5", HOUR + 31_000, Verdict::Reject))
        .await
        .unwrap();
    ledger.flush().await.unwrap();
}

fn query() -> BrowseQuery {
    BrowseQuery {
        limit: 100,
        ..BrowseQuery::default()
    }
}

async fn ids(ledger: &Ledger, q: BrowseQuery) -> Vec<String> {
    let page = ledger.browse(q).await.unwrap();
    page.rows.into_iter().map(|r| r.action.action_id).collect()
}

#[tokio::test]
async fn filters_narrow_and_combine() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    seed(&ledger).await;

    assert_eq!(
        ids(&ledger, query()).await,
        ["a8", "a7", "a6", "a5", "a4", "a3", "a2", "a1"]
    );
    let cases: Vec<(BrowseQuery, Vec<&str>)> = vec![
        (
            BrowseQuery {
                verdict: Some(Verdict::Allow),
                ..query()
            },
            vec!["a8", "a7", "a4", "a2", "a1"],
        ),
        (
            BrowseQuery {
                verdict: Some(Verdict::Reject),
                ..query()
            },
            vec!["a5", "a3"],
        ),
        (
            BrowseQuery {
                verdict: Some(Verdict::Pending),
                ..query()
            },
            vec!["a6"],
        ),
        (
            BrowseQuery {
                decided_by: Some(DecidedBy::Human),
                ..query()
            },
            vec!["a5", "a4"],
        ),
        (
            BrowseQuery {
                paused: Some(true),
                ..query()
            },
            vec!["a6", "a5", "a4"],
        ),
        (
            BrowseQuery {
                tool: Some("Read".into()),
                ..query()
            },
            vec!["a8", "a7", "a1"],
        ),
        (
            BrowseQuery {
                agent: Some("agent-s2".into()),
                tool: Some("Read".into()),
                ..query()
            },
            vec!["a8", "a7"],
        ),
        (
            BrowseQuery {
                session_id: Some("s1".into()),
                ..query()
            },
            vec!["a4", "a3", "a2", "a1"],
        ),
        // A project is its directory and everything below it, and nothing that merely starts alike.
        (
            BrowseQuery {
                cwd: Some("/p/alpha/".into()),
                ..query()
            },
            vec!["a4", "a3", "a2", "a1"],
        ),
        (
            BrowseQuery {
                rule_id: Some("read-ok".into()),
                ..query()
            },
            vec!["a8", "a7", "a1"],
        ),
        (
            BrowseQuery {
                since_ms: Some(HOUR),
                ..query()
            },
            vec!["a8", "a7", "a6", "a5"],
        ),
        (
            BrowseQuery {
                since_ms: Some(2_000),
                until_ms: Some(4_000),
                ..query()
            },
            vec!["a3", "a2"],
        ),
        (
            BrowseQuery {
                min_score: Some(0.5),
                ..query()
            },
            vec!["a7", "a3"],
        ),
        (
            BrowseQuery {
                min_score: Some(0.0),
                max_score: Some(0.5),
                ..query()
            },
            vec!["a7", "a1"],
        ),
        // Search: as typed (the input is stored JSON-escaped), case-insensitive, % and _ literal.
        (
            BrowseQuery {
                text: Some("echo \"needle\"".into()),
                ..query()
            },
            vec!["a2"],
        ),
        (
            BrowseQuery {
                text: Some("100%".into()),
                ..query()
            },
            vec!["a2"],
        ),
        (
            BrowseQuery {
                text: Some("CARGO PUB".into()),
                ..query()
            },
            vec!["a5", "a4"],
        ),
        (
            BrowseQuery {
                text: Some("file_1".into()),
                ..query()
            },
            vec!["a7"],
        ),
        (
            BrowseQuery {
                text: Some("a6".into()),
                ..query()
            },
            vec!["a6"],
        ),
        (
            BrowseQuery {
                text: Some("nothing like this".into()),
                ..query()
            },
            vec![],
        ),
    ];
    for (q, want) in cases {
        assert_eq!(ids(&ledger, q.clone()).await, want, "{q:?}");
    }
    // Oldest first, for a timeline.
    let asc = BrowseQuery {
        session_id: Some("s2".into()),
        ascending: true,
        ..query()
    };
    assert_eq!(ids(&ledger, asc).await, ["a5", "a6", "a7", "a8"]);
}

#[tokio::test]
async fn keyset_pages_cover_every_row_once_in_either_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    seed(&ledger).await;
    for ascending in [false, true] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = ledger
                .browse(BrowseQuery {
                    limit: 3,
                    ascending,
                    cursor,
                    ..query()
                })
                .await
                .unwrap();
            assert!(page.rows.len() <= 3);
            seen.extend(page.rows.into_iter().map(|r| r.action.action_id));
            match page.next_cursor {
                Some(c) => cursor = Some(c.parse().unwrap()),
                None => break,
            }
        }
        let mut want = vec!["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
        if !ascending {
            want.reverse();
        }
        assert_eq!(seen, want, "ascending: {ascending}");
    }
}

#[tokio::test]
async fn a_search_reads_a_bounded_stretch_per_page_and_says_where_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    seed(&ledger).await;
    // Only a1 matches; with 3 rows read per page the newest pages come back empty, with a cursor.
    let search = BrowseQuery {
        text: Some("/p/alpha/a.rs".into()),
        scan_rows: Some(3),
        ..query()
    };
    let first = ledger.browse(search.clone()).await.unwrap();
    assert!(first.rows.is_empty());
    assert_eq!(first.scanned, 3);
    let mut cursor = first.next_cursor.clone();
    let mut found = Vec::new();
    let mut pages = 1;
    while let Some(c) = cursor {
        let page = ledger
            .browse(BrowseQuery {
                cursor: Some(c.parse().unwrap()),
                ..search.clone()
            })
            .await
            .unwrap();
        assert!(page.scanned <= 3);
        found.extend(page.rows.into_iter().map(|r| r.action.action_id));
        cursor = page.next_cursor;
        pages += 1;
    }
    assert_eq!(found, ["a1"]);
    assert_eq!(pages, 3, "8 rows, 3 per page");
}

#[tokio::test]
async fn sessions_are_listed_most_recent_first_with_their_counts() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    seed(&ledger).await;
    let list = ledger.sessions(10, None).await.unwrap();
    let got: Vec<_> = list
        .sessions
        .iter()
        .map(|s| {
            (
                s.session_id.as_str(),
                s.actions,
                s.allowed,
                s.rejected,
                s.paused,
                s.pending,
            )
        })
        .collect();
    assert_eq!(got, [("s2", 4, 2, 1, 2, 1), ("s1", 4, 3, 1, 1, 0)]);
    assert_eq!(list.sessions[0].first_ms, HOUR + 1_000);
    assert_eq!(list.sessions[0].cwd.as_deref(), Some("/p/alphabet"));
    let first = ledger.sessions(1, None).await.unwrap();
    let cursor = first.next_cursor.clone().unwrap();
    let (ms, id) = cursor.split_once(':').unwrap();
    let second = ledger
        .sessions(1, Some((ms.parse().unwrap(), id.to_owned())))
        .await
        .unwrap();
    assert_eq!(second.sessions[0].session_id, "s1");
}

#[tokio::test]
async fn the_overview_counts_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    seed(&ledger).await;
    let o = ledger
        .overview(OverviewQuery {
            since_ms: 0,
            until_ms: 2 * HOUR,
            bucket_ms: HOUR,
        })
        .await
        .unwrap();
    assert_eq!(o.total, 8);
    assert_eq!(o.buckets.len(), 2);
    let b = |i: usize| {
        let b = &o.buckets[i];
        (
            b.allowed,
            b.rejected,
            b.approved,
            b.denied,
            b.timed_out,
            b.pending,
        )
    };
    assert_eq!(b(0), (2, 1, 1, 0, 0, 0));
    assert_eq!(b(1), (2, 0, 0, 1, 0, 1));
    assert_eq!(o.pending_now, 1);
    assert_eq!(o.latency.decisions, 2);
    assert_eq!(o.latency.median_ms, Some(10_000));
    assert_eq!(o.latency.p99_ms, Some(30_000));
    assert_eq!(o.prompts.prompts, 3);
    assert!((o.prompts.prompts_per_hour - 1.5).abs() < 1e-9);
    assert_eq!(o.prompts.granted, 0);
    let top: Vec<_> = o
        .top_rules
        .iter()
        .map(|t| (t.key.as_str(), t.count))
        .collect();
    assert_eq!(
        top,
        [
            ("(policy default)", 3),
            ("read-ok", 3),
            ("echo-ok", 1),
            ("no-rm", 1)
        ]
    );
    let paused = &o.top_paused[0];
    assert_eq!(
        (
            paused.key.as_str(),
            paused.count,
            paused.allowed,
            paused.rejected
        ),
        ("Bash: cargo publish", 2, 1, 1)
    );
    assert_eq!(o.classifier.scored, 3);
    assert_eq!(o.classifier.waiting, 5);
    assert_eq!(o.classifier.model.as_deref(), Some("fixed"));

    // A window that holds only the second hour.
    let later = ledger
        .overview(OverviewQuery {
            since_ms: HOUR,
            until_ms: 2 * HOUR,
            bucket_ms: 600_000,
        })
        .await
        .unwrap();
    assert_eq!(
        (later.total, later.buckets.len(), later.prompts.prompts),
        (4, 6, 2)
    );
    assert_eq!(later.latency.median_ms, Some(30_000));
}

/// Benchmark, not a test of behaviour (run it: `cargo test -p gatehouse-ledger --test browse --
/// --ignored --nocapture`): the console's reads on a ledger of `BENCH_ACTIONS` actions, each
/// printed with its ratio to the baseline measured in the same run — the newest page, no filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures, asserts nothing about time"]
async fn bench_console_reads_on_a_large_ledger() {
    const BENCH_ACTIONS: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir);
    let started = std::time::Instant::now();
    for i in 0..BENCH_ACTIONS {
        let input = json!({ "command": format!("cargo build --package crate-{} --jobs {}", i % 977, i % 7) });
        let session = format!("s{}", i / 200);
        let verdict = if i % 10 == 0 {
            Verdict::Pending
        } else {
            Verdict::Allow
        };
        let seed = Seed {
            id: &format!("b{i}"),
            at: i as i64 * 100,
            tool: "Bash",
            input,
            session: &session,
            cwd: "/p/bench",
            verdict,
            rule: (i % 10 != 0).then_some("build-ok"),
        };
        ledger.record_action(action(&seed)).await.unwrap();
    }
    ledger.flush().await.unwrap();
    println!(
        "seeded {BENCH_ACTIONS} actions in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    async fn time<T>(f: impl std::future::Future<Output = T>) -> (f64, T) {
        let start = std::time::Instant::now();
        let out = f.await;
        (start.elapsed().as_secs_f64() * 1e3, out)
    }
    let runs = 5;
    let mut rows: Vec<(&str, f64)> = Vec::new();
    let cases: Vec<(&str, BrowseQuery)> = vec![
        (
            "newest page, no filter (baseline)",
            BrowseQuery {
                limit: 50,
                ..BrowseQuery::default()
            },
        ),
        (
            "one session, oldest first",
            BrowseQuery {
                limit: 50,
                session_id: Some("s250".into()),
                ascending: true,
                ..BrowseQuery::default()
            },
        ),
        (
            "a time range deep in the past",
            BrowseQuery {
                limit: 50,
                since_ms: Some(1_000_000),
                until_ms: Some(1_200_000),
                ..BrowseQuery::default()
            },
        ),
        (
            "search, common word",
            BrowseQuery {
                limit: 50,
                text: Some("crate-5".into()),
                ..BrowseQuery::default()
            },
        ),
        (
            "search, no match (one bounded stretch)",
            BrowseQuery {
                limit: 50,
                text: Some("no such words".into()),
                ..BrowseQuery::default()
            },
        ),
        (
            "paused only",
            BrowseQuery {
                limit: 50,
                paused: Some(true),
                ..BrowseQuery::default()
            },
        ),
    ];
    for (name, q) in cases {
        let mut best = f64::MAX;
        for _ in 0..runs {
            let (ms, page) = time(ledger.browse(q.clone())).await;
            page.unwrap();
            best = best.min(ms);
        }
        rows.push((name, best));
    }
    let mut best = f64::MAX;
    for _ in 0..runs {
        let (ms, o) = time(ledger.overview(OverviewQuery {
            since_ms: 0,
            until_ms: BENCH_ACTIONS as i64 * 100,
            bucket_ms: 200_000,
        }))
        .await;
        o.unwrap();
        best = best.min(ms);
    }
    rows.push(("overview of the whole ledger (50 buckets)", best));
    let (ms, s) = time(ledger.sessions(50, None)).await;
    s.unwrap();
    rows.push(("session list (latest 200,000 actions)", ms));
    let baseline = rows[0].1;
    println!("{:<45} {:>10} {:>8}", "read (best of 5)", "ms", "× base");
    for (name, ms) in rows {
        println!("{name:<45} {ms:>10.2} {:>8.1}", ms / baseline);
    }
}
