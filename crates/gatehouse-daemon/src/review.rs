//! The review queue and reviewers' labels: which actions a person should mark *malicious* or
//! *benign* (disagreements between the rules and the classifier, and human decisions that went
//! against the score), and recording those labels in the ledger for retraining.
//!
//! The queue is read with the thresholds in force (`[classifier] flag_threshold` and
//! `disagreement_threshold`). A label is a chained ledger record appended through the single
//! writer and committed before the caller is answered; relabelling appends another (the latest
//! counts, the history keeps all). Every label is announced to dashboards as `action.labelled`.

use gatehouse_ledger::{NewLabel, ReviewFilter, ReviewQuery};
use gatehouse_protocol::{
    ClassifierInfo, Event, LabelRecord, LabelledAction, ReviewLabel, ReviewList,
};

use crate::app::{ActionError, App, MAX_LIST_LIMIT};
use crate::auth::Caller;
use crate::clock::now_ms;

/// Longest note a label may carry, in bytes (as for decisions).
const MAX_NOTE_BYTES: usize = 4096;

/// What `GET /v1/review` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ReviewRequest {
    /// `unlabelled` (the default), `labelled` or `all`.
    pub status: Option<String>,
    /// `flagged` also lists every action scored at or above the flag threshold.
    pub include: Option<String>,
    pub limit: Option<u32>,
    pub before: Option<String>,
}

/// The name a label records as its reviewer: the person behind the credential (`owner` for
/// the approver token).
pub fn reviewer_name(caller: &Caller) -> String {
    match caller.person() {
        Some(person) => person.name,
        None => "agent".into(),
    }
}

impl App {
    /// The model in force and the thresholds the queue applies.
    pub fn classifier_info(&self) -> ClassifierInfo {
        self.scoring.info()
    }

    /// A page of the review queue, newest first.
    pub async fn review_queue(&self, request: ReviewRequest) -> Result<ReviewList, ActionError> {
        let filter = match request.status.as_deref() {
            None | Some("") => ReviewFilter::Unlabelled,
            Some(s) => ReviewFilter::parse(s).ok_or_else(|| ActionError::Invalid {
                field: "status",
                message: format!("`{s}` is not one of unlabelled, labelled, all"),
            })?,
        };
        let include_flagged = match request.include.as_deref() {
            None | Some("") => false,
            Some("flagged") => true,
            Some(s) => {
                return Err(ActionError::Invalid {
                    field: "include",
                    message: format!("`{s}` is not something the queue can include (flagged)"),
                });
            }
        };
        let limit = request.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(ActionError::Invalid {
                field: "limit",
                message: format!("limit must be between 1 and {MAX_LIST_LIMIT}"),
            });
        }
        let classifier = self.classifier_info();
        let page = self
            .ledger
            .review_queue(ReviewQuery {
                filter,
                include_flagged,
                flag_threshold: classifier.flag_threshold,
                disagreement_threshold: classifier.disagreement_threshold,
                limit,
                before: request.before,
            })
            .await?;
        let next_before = (page.items.len() == limit as usize)
            .then(|| page.items.last().map(|item| item.action.action_id.clone()))
            .flatten();
        Ok(ReviewList {
            items: page.items,
            next_before,
            unlabelled: page.unlabelled,
            labelled: page.labelled,
            classifier,
        })
    }

    /// Records a reviewer's label on an action (committed before this returns) and tells the
    /// dashboards.
    pub async fn label(
        &self,
        action_id: &str,
        label: ReviewLabel,
        note: Option<String>,
        reviewer: &str,
    ) -> Result<LabelledAction, ActionError> {
        if note.as_ref().is_some_and(|n| n.len() > MAX_NOTE_BYTES) {
            return Err(ActionError::Invalid {
                field: "note",
                message: format!("a note is at most {MAX_NOTE_BYTES} bytes"),
            });
        }
        let record = LabelRecord {
            label,
            reviewer: Some(reviewer.to_owned()),
            note: note.filter(|n| !n.is_empty()),
            recorded_at_ms: now_ms(),
        };
        let appended = self
            .ledger
            .append_label(NewLabel {
                action_id: action_id.to_owned(),
                label: record.label,
                reviewer: record.reviewer.clone(),
                note: record.note.clone(),
                recorded_at_ms: record.recorded_at_ms,
            })
            .await?;
        if !appended {
            return Err(ActionError::NotFound(action_id.to_owned()));
        }
        tracing::info!(
            action_id,
            label = label.as_str(),
            reviewer,
            "action labelled"
        );
        self.events.publish(&Event::ActionLabelled {
            action_id: action_id.to_owned(),
            label: record.clone(),
        });
        Ok(LabelledAction {
            action_id: action_id.to_owned(),
            label: record,
        })
    }
}
