//! Standing grants for approvers: list, revoke, suggestions and the fatigue counts
//! (`/v1/grants…`). Saving a grant is the dashboard's (it needs the person, and their key).

use gatehouse_protocol::grants::{GrantList, GrantRecord, GrantStats, GrantSuggestions};
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// `GET /v1/grants`: every grant, newest first, with its state and use.
    pub async fn grants(&self) -> Result<GrantList, ClientError> {
        let url = self.url(&["v1", "grants"])?;
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `POST /v1/grants/{id}/revoke`: the grant stops applying at once.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<GrantRecord, ClientError> {
        let url = self.url(&["v1", "grants", grant_id, "revoke"])?;
        let empty = serde_json::Map::new();
        self.call(Method::POST, url, Some(&empty)).await
    }

    /// `GET /v1/grants/suggestions`: kinds of action people keep approving.
    pub async fn grant_suggestions(&self) -> Result<GrantSuggestions, ClientError> {
        let url = self.url(&["v1", "grants", "suggestions"])?;
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `GET /v1/grants/stats?since_ms=`: prompts, grant allows and their share.
    pub async fn grant_stats(&self, since_ms: Option<i64>) -> Result<GrantStats, ClientError> {
        let mut url = self.url(&["v1", "grants", "stats"])?;
        if let Some(since) = since_ms {
            url.query_pairs_mut()
                .append_pair("since_ms", &since.to_string());
        }
        self.call(Method::GET, url, None::<&()>).await
    }
}
