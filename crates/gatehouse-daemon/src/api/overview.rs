//! The dashboard console's overview: `GET /v1/ledger/overview` — verdicts over time, what waits
//! now, how long people take to decide, the busiest rules and paused commands, the classifier's
//! health, the policy in force, and the prompt load (how often a person was asked).

use axum::Json;
use axum::extract::State;
use gatehouse_ledger::{MAX_BUCKETS, OverviewQuery};
use gatehouse_protocol::{Overview, PolicyState};
use serde::Deserialize;

use crate::api::error::{ApiError, ApiQuery};
use crate::api::guard::ApproverCaller;
use crate::app::AppState;
use crate::clock::now_ms;

const HOUR_MS: i64 = 3_600_000;
/// The window when none is asked for: the last day.
const DEFAULT_WINDOW_MS: i64 = 24 * HOUR_MS;
/// Longest window.
const MAX_WINDOW_MS: i64 = 400 * 24 * HOUR_MS;
/// Bucket sizes picked for a window when none is asked for (the first giving at most 48).
const BUCKET_STEPS_MS: &[i64] = &[
    60_000,
    5 * 60_000,
    15 * 60_000,
    HOUR_MS,
    3 * HOUR_MS,
    6 * HOUR_MS,
    24 * HOUR_MS,
    7 * 24 * HOUR_MS,
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverviewParams {
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    bucket_ms: Option<i64>,
}

/// The window a query asks for, checked.
fn window(params: &OverviewParams, now: i64) -> Result<OverviewQuery, ApiError> {
    let until_ms = params.until_ms.unwrap_or(now);
    let since_ms = params
        .since_ms
        .unwrap_or(until_ms.saturating_sub(DEFAULT_WINDOW_MS));
    if since_ms >= until_ms {
        return Err(ApiError::invalid(
            "since_ms",
            "since_ms is not before until_ms",
        ));
    }
    let span = until_ms - since_ms;
    if span > MAX_WINDOW_MS {
        return Err(ApiError::invalid(
            "since_ms",
            "the window is at most 400 days",
        ));
    }
    let bucket_ms = match params.bucket_ms {
        Some(b) if b < 1_000 => {
            return Err(ApiError::invalid("bucket_ms", "bucket_ms is at least 1000"));
        }
        Some(b) => b,
        None => BUCKET_STEPS_MS
            .iter()
            .copied()
            .find(|step| span / step <= 48)
            .unwrap_or(30 * 24 * HOUR_MS),
    };
    if (span + bucket_ms - 1) / bucket_ms > MAX_BUCKETS {
        return Err(ApiError::invalid(
            "bucket_ms",
            format!("the window holds at most {MAX_BUCKETS} buckets"),
        ));
    }
    Ok(OverviewQuery {
        since_ms,
        until_ms,
        bucket_ms,
    })
}

/// `GET /v1/ledger/overview?since_ms=&until_ms=&bucket_ms=` (default: the last 24 hours).
pub async fn overview(
    State(state): State<AppState>,
    _approver: ApproverCaller,
    ApiQuery(params): ApiQuery<OverviewParams>,
) -> Result<Json<Overview>, ApiError> {
    let query = window(&params, now_ms())?;
    let mut overview = state.ledger().overview(query).await?;
    let health = state.health();
    overview.policy = PolicyState {
        version: Some(health.policy),
        reloads: health.policy_reloads,
        reload_error: health.policy_error,
    };
    Ok(Json(overview))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(since: Option<i64>, until: Option<i64>, bucket: Option<i64>) -> OverviewParams {
        OverviewParams {
            since_ms: since,
            until_ms: until,
            bucket_ms: bucket,
        }
    }

    #[test]
    fn the_default_window_is_the_last_day_in_hours() {
        let q = window(&params(None, None, None), 100 * HOUR_MS).unwrap();
        assert_eq!(
            (q.since_ms, q.until_ms, q.bucket_ms),
            (76 * HOUR_MS, 100 * HOUR_MS, HOUR_MS)
        );
    }

    #[test]
    fn bad_windows_name_their_field() {
        for (p, field) in [
            (params(Some(10), Some(10), None), "since_ms"),
            (params(Some(0), Some(MAX_WINDOW_MS + 1), None), "since_ms"),
            (params(Some(0), Some(HOUR_MS), Some(10)), "bucket_ms"),
            (params(Some(0), Some(HOUR_MS), Some(1_000)), "bucket_ms"),
        ] {
            let err = window(&p, 0).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{p:?}");
        }
    }
}
