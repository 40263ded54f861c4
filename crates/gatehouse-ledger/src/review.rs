//! The review queue read: actions a reviewer should label, because the classifier and the rules
//! (or a person) disagreed about them, with why each is there and its latest label.
//!
//! Which actions are in the queue is decided here, in one query, with the thresholds in force
//! passed in (the ledger knows no configuration): an item's reason is the first that holds of
//! *disagreement* (rules allowed, score at or above the disagreement threshold, or recorded as a
//! disagreement when scored), *approved_flagged* (a person approved a score at or above the flag
//! threshold), *denied_unflagged* (a person denied a score below it), and, when asked for,
//! *flagged* (any score at or above it). The score is the action's latest successful one.

use gatehouse_protocol::{LabelRecord, ReviewItem, ReviewLabel, ReviewReason};
use rusqlite::{Connection, named_params};

use crate::{LedgerError, SqliteLedger, read};

/// Which queue items a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReviewFilter {
    /// Not labelled yet: what is left to review.
    #[default]
    Unlabelled,
    Labelled,
    All,
}

impl ReviewFilter {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unlabelled" => ReviewFilter::Unlabelled,
            "labelled" => ReviewFilter::Labelled,
            "all" => ReviewFilter::All,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            ReviewFilter::Unlabelled => "unlabelled",
            ReviewFilter::Labelled => "labelled",
            ReviewFilter::All => "all",
        }
    }
}

/// A page of the review queue, newest first.
#[derive(Debug, Clone)]
pub struct ReviewQuery {
    pub filter: ReviewFilter,
    /// Also list every flagged action (score at or above `flag_threshold`).
    pub include_flagged: bool,
    pub flag_threshold: f64,
    pub disagreement_threshold: f64,
    pub limit: u32,
    /// Only items recorded before this action.
    pub before: Option<String>,
}

/// One page of the queue and the size of the whole queue.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewPage {
    pub items: Vec<ReviewItem>,
    pub unlabelled: u64,
    pub labelled: u64,
}

/// Every scored action with its queue reason (NULL when it is not in the queue) and latest label,
/// then `{candidates}`: nothing (a page reads actions newest first and stops at its limit), or
/// [`CANDIDATES`] (the counts must visit the whole queue).
const QUEUE: &str = "
WITH queue AS (
  SELECT a.seq AS seq, a.id AS id,
         CASE
           WHEN a.verdict = 'allow' AND (s.disagreement = 1 OR s.score >= :disagreement)
             THEN 'disagreement'
           WHEN d.decided_by = 'human' AND d.verdict = 'allow' AND s.score >= :flag
             THEN 'approved_flagged'
           WHEN d.decided_by = 'human' AND d.verdict = 'reject' AND s.score < :flag
             THEN 'denied_unflagged'
           WHEN :include_flagged AND s.score >= :flag
             THEN 'flagged'
         END AS reason,
         l.label AS label, l.reviewer AS reviewer, l.note AS note, l.recorded_at_ms AS labelled_at
  FROM actions a
  JOIN scores s ON s.seq = (SELECT max(seq) FROM scores WHERE action_id = a.id AND status = 'scored')
  LEFT JOIN decisions d ON d.action_id = a.id
  LEFT JOIN labels l ON l.seq = (SELECT max(seq) FROM labels WHERE action_id = a.id)
  {candidates}
)";

/// The only actions that can have a reason: a score high enough for one, or a person's decision.
/// A plain scan of `scores` and `decisions`, so counting skips the per-action lookups for every
/// other action (most of a ledger).
const CANDIDATES: &str = "WHERE a.id IN (
    SELECT action_id FROM scores WHERE status = 'scored' AND (disagreement = 1
      OR score >= CASE WHEN :include_flagged THEN min(:flag, :disagreement) ELSE :disagreement END)
    UNION ALL SELECT action_id FROM decisions WHERE decided_by = 'human')";

fn page(conn: &Connection, query: &ReviewQuery) -> Result<ReviewPage, LedgerError> {
    let sql = format!(
        "{}
SELECT id, reason, label, reviewer, note, labelled_at FROM queue
WHERE reason IS NOT NULL
  AND (:filter = 'all' OR (:filter = 'labelled') = (label IS NOT NULL))
  AND (:before IS NULL OR seq < COALESCE((SELECT seq FROM actions WHERE id = :before), -1))
ORDER BY seq DESC LIMIT :limit",
        QUEUE.replace("{candidates}", "")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":disagreement": query.disagreement_threshold,
            ":flag": query.flag_threshold,
            ":include_flagged": query.include_flagged,
            ":filter": query.filter.as_str(),
            ":before": query.before,
            ":limit": i64::from(query.limit),
        },
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<i64>>(5)?,
            ))
        },
    )?;
    let mut items = Vec::new();
    for row in rows {
        let (id, reason, label, reviewer, note, labelled_at) = row?;
        let corrupt = |what: &'static str, detail: String| read::corrupt_column(&id, what, detail);
        let reason =
            ReviewReason::parse(&reason).ok_or_else(|| corrupt("review reason", reason))?;
        let label = match label {
            Some(text) => Some(LabelRecord {
                label: ReviewLabel::parse(&text).ok_or_else(|| corrupt("label", text))?,
                reviewer,
                note,
                recorded_at_ms: labelled_at.unwrap_or_default(),
            }),
            None => None,
        };
        let action =
            read::action(conn, &id)?.ok_or_else(|| corrupt("action", "vanished".into()))?;
        items.push(ReviewItem {
            action,
            reason,
            label,
        });
    }
    let counts = format!(
        "{}
SELECT COALESCE(sum(label IS NULL), 0), COALESCE(sum(label IS NOT NULL), 0) FROM queue
WHERE reason IS NOT NULL",
        QUEUE.replace("{candidates}", CANDIDATES)
    );
    let (unlabelled, labelled): (i64, i64) = conn.prepare_cached(&counts)?.query_row(
        named_params! {
            ":disagreement": query.disagreement_threshold,
            ":flag": query.flag_threshold,
            ":include_flagged": query.include_flagged,
        },
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(ReviewPage {
        items,
        unlabelled: unlabelled.max(0) as u64,
        labelled: labelled.max(0) as u64,
    })
}

impl SqliteLedger {
    /// A page of the review queue (newest first) and how many items it holds in all.
    pub async fn review_queue(&self, query: ReviewQuery) -> Result<ReviewPage, LedgerError> {
        self.inner.reads.run(move |conn| page(conn, &query)).await
    }
}
