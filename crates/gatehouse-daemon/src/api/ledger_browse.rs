//! The dashboard console's ledger browser: `GET /v1/ledger/actions` (filtered, keyset-paged),
//! `GET /v1/ledger/export` (the same filter as JSONL or CSV), and `GET /v1/ledger/sessions`.
//! Thin: parse and check the query, ask the ledger's read side (`gatehouse_ledger::browse`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gatehouse_ledger::{BrowseQuery, MAX_BROWSE_LIMIT};
use gatehouse_protocol::{BrowsePage, BrowseRow, DecidedBy, SessionList, Verdict};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiQuery};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::clock::now_ms;

/// Default rows per browse page.
const DEFAULT_LIMIT: u32 = 50;
/// Most rows one export holds; past it the export says it was cut short.
pub const EXPORT_MAX_ROWS: usize = 100_000;
/// Longest search text.
const MAX_TEXT: usize = 500;

/// The browser's query string; every field optional. Unknown fields are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowseParams {
    verdict: Option<String>,
    decided_by: Option<String>,
    paused: Option<bool>,
    tool: Option<String>,
    agent: Option<String>,
    session: Option<String>,
    cwd: Option<String>,
    rule: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    min_score: Option<f64>,
    max_score: Option<f64>,
    q: Option<String>,
    order: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
    /// Export only: `jsonl` (the default) or `csv`.
    format: Option<String>,
}

/// A text filter: absent when empty.
fn text(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl BrowseParams {
    /// The ledger query these parameters ask for, or the first parameter that is wrong.
    fn into_query(self) -> Result<BrowseQuery, ApiError> {
        let verdict = match text(self.verdict) {
            None => None,
            Some(v) => Some(Verdict::parse(&v).ok_or_else(|| {
                ApiError::invalid(
                    "verdict",
                    format!("`{v}` is not one of allow, reject, pending"),
                )
            })?),
        };
        let decided_by = match text(self.decided_by) {
            None => None,
            Some(v) => Some(DecidedBy::parse(&v).ok_or_else(|| {
                ApiError::invalid(
                    "decided_by",
                    format!("`{v}` is not one of rule, default, human, timeout, error"),
                )
            })?),
        };
        for (field, score) in [("min_score", self.min_score), ("max_score", self.max_score)] {
            if score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} is between 0 and 1"),
                ));
            }
        }
        if let (Some(min), Some(max)) = (self.min_score, self.max_score)
            && min > max
        {
            return Err(ApiError::invalid(
                "min_score",
                "min_score is above max_score",
            ));
        }
        if let (Some(since), Some(until)) = (self.since_ms, self.until_ms)
            && since >= until
        {
            return Err(ApiError::invalid(
                "since_ms",
                "since_ms is not before until_ms",
            ));
        }
        let ascending = match self.order.as_deref() {
            None | Some("") | Some("desc") => false,
            Some("asc") => true,
            Some(other) => {
                return Err(ApiError::invalid(
                    "order",
                    format!("`{other}` is not one of asc, desc"),
                ));
            }
        };
        let cursor =
            match text(self.cursor) {
                None => None,
                Some(c) => Some(c.parse::<i64>().ok().filter(|seq| *seq >= 0).ok_or_else(
                    || ApiError::invalid("cursor", "cursor is a page's next_cursor"),
                )?),
            };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_BROWSE_LIMIT {
            return Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_BROWSE_LIMIT}"),
            ));
        }
        let q = text(self.q);
        if q.as_ref().is_some_and(|q| q.chars().count() > MAX_TEXT) {
            return Err(ApiError::invalid(
                "q",
                format!("the search is at most {MAX_TEXT} characters"),
            ));
        }
        Ok(BrowseQuery {
            verdict,
            decided_by,
            paused: self.paused,
            tool: text(self.tool),
            agent: text(self.agent),
            session_id: text(self.session),
            cwd: text(self.cwd),
            rule_id: text(self.rule),
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            min_score: self.min_score,
            max_score: self.max_score,
            text: q,
            ascending,
            cursor,
            limit,
            scan_rows: None,
        })
    }
}

/// `GET /v1/ledger/actions`: a page of the ledger, newest first (or `order=asc`).
pub async fn browse(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(mut params): ApiQuery<BrowseParams>,
) -> Result<Json<BrowsePage>, ApiError> {
    if params.format.take().is_some() {
        return Err(ApiError::invalid(
            "format",
            "format is for /v1/ledger/export only",
        ));
    }
    Ok(Json(state.ledger().browse(params.into_query()?).await?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Jsonl,
    Csv,
}

/// `GET /v1/ledger/export?format=jsonl|csv&…`: every row the filter matches (up to
/// `EXPORT_MAX_ROWS`), as a download.
pub async fn export(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(mut params): ApiQuery<BrowseParams>,
) -> Result<Response, ApiError> {
    let format = match params.format.take().as_deref() {
        None | Some("") | Some("jsonl") => ExportFormat::Jsonl,
        Some("csv") => ExportFormat::Csv,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("`{other}` is not one of jsonl, csv"),
            ));
        }
    };
    if params.cursor.is_some() || params.limit.is_some() {
        return Err(ApiError::invalid(
            "cursor",
            "an export holds every matching row: no cursor or limit",
        ));
    }
    params.limit = Some(MAX_BROWSE_LIMIT);
    let mut query = params.into_query()?;
    let mut body = String::new();
    if format == ExportFormat::Csv {
        body.push_str(&csv_line(CSV_HEADER.iter().map(|h| (*h).to_owned())));
    }
    let mut rows = 0usize;
    let mut truncated = false;
    loop {
        let page = state.ledger().browse(query.clone()).await?;
        for row in &page.rows {
            if rows == EXPORT_MAX_ROWS {
                truncated = true;
                break;
            }
            rows += 1;
            match format {
                ExportFormat::Jsonl => {
                    body.push_str(&serde_json::to_string(row).unwrap_or_default());
                    body.push('\n');
                }
                ExportFormat::Csv => body.push_str(&csv_line(csv_fields(row))),
            }
        }
        match page.next_cursor.and_then(|c| c.parse::<i64>().ok()) {
            Some(next) if !truncated => query.cursor = Some(next),
            _ => break,
        }
    }
    let (content_type, ext) = match format {
        ExportFormat::Jsonl => ("application/x-ndjson; charset=utf-8", "jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let disposition = format!(
        "attachment; filename=\"gatehouse-ledger-{}.{ext}\"",
        now_ms()
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
        .headers_mut()
        .insert("x-gatehouse-export-rows", HeaderValue::from(rows as u64));
    if truncated {
        response.headers_mut().insert(
            "x-gatehouse-export-truncated",
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

const CSV_HEADER: &[&str] = &[
    "seq",
    "action_id",
    "created_at_ms",
    "tool",
    "input",
    "verdict",
    "decided_by",
    "rule_id",
    "reason",
    "agent",
    "session_id",
    "cwd",
    "score",
    "model",
    "decided_at_ms",
    "note",
    "outcome_ran",
    "outcome_exit_code",
    "outcome_findings",
];

fn csv_fields(row: &BrowseRow) -> Vec<String> {
    let a = &row.action;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        row.seq.to_string(),
        a.action_id.clone(),
        a.created_at_ms.to_string(),
        a.tool.clone(),
        serde_json::to_string(&a.input).unwrap_or_default(),
        a.verdict.as_str().to_owned(),
        a.decided_by.as_str().to_owned(),
        opt(&a.rule_id),
        a.reason.clone(),
        opt(&a.agent),
        opt(&a.session_id),
        opt(&a.cwd),
        a.tier2
            .as_ref()
            .map(|t| t.score.to_string())
            .unwrap_or_default(),
        a.tier2
            .as_ref()
            .map(|t| t.model.clone())
            .unwrap_or_default(),
        a.decision
            .as_ref()
            .map(|d| d.decided_at_ms.to_string())
            .unwrap_or_default(),
        a.decision
            .as_ref()
            .and_then(|d| d.note.clone())
            .unwrap_or_default(),
        row.outcome
            .as_ref()
            .map(|o| o.ran.to_string())
            .unwrap_or_default(),
        row.outcome
            .as_ref()
            .and_then(|o| o.exit_code)
            .map(|c| c.to_string())
            .unwrap_or_default(),
        row.outcome
            .as_ref()
            .map(|o| o.findings.to_string())
            .unwrap_or_default(),
    ]
}

/// One CSV record (RFC 4180). A field a spreadsheet would run as a formula (`=`, `+`, `-`, `@`,
/// tab, CR first) gets a leading `'`: an agent chose these strings.
fn csv_line(fields: impl IntoIterator<Item = String>) -> String {
    let mut line = String::new();
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r'])
            && field.parse::<f64>().is_err()
        {
            format!("'{field}")
        } else {
            field
        };
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&field);
        }
    }
    line.push_str("\r\n");
    line
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /v1/ledger/sessions`: recently active sessions, most recent first.
pub async fn sessions(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(params): ApiQuery<SessionParams>,
) -> Result<Json<SessionList>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_BROWSE_LIMIT {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_BROWSE_LIMIT}"),
        ));
    }
    let cursor = match text(params.cursor) {
        None => None,
        Some(c) => Some(
            c.split_once(':')
                .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| ApiError::invalid("cursor", "cursor is a page's next_cursor"))?,
        ),
    };
    Ok(Json(state.ledger().sessions(limit, cursor).await?))
}

#[cfg(test)]
mod tests {
    use super::csv_line;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let line = csv_line(
            [
                "plain",
                "a,b",
                "say \"hi\"",
                "=cmd|' /C calc'!A0",
                "-1",
                "@x",
                "line\nbreak",
            ]
            .map(String::from),
        );
        assert_eq!(
            line,
            "plain,\"a,b\",\"say \"\"hi\"\"\",'=cmd|' /C calc'!A0,-1,'@x,\"line\nbreak\"\r\n"
        );
    }
}
