//! Team mode for approvers and admins: named users (`/v1/users`, `/v1/whoami`) and the
//! versioned policy (`/v1/policy/versions`, `/v1/policy/rollback`).

use gatehouse_protocol::{
    NewUserRequest, NewUserResponse, PolicyHistory, PolicyPushRequest, PolicyRollbackRequest,
    PolicyVersionView, Role, UserList, WhoAmI,
};
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// `POST /v1/users` (an admin): adds a person; the answer holds their token, once.
    pub async fn add_user(&self, name: &str, role: Role) -> Result<NewUserResponse, ClientError> {
        let url = self.url(&["v1", "users"])?;
        let body = NewUserRequest {
            name: name.to_owned(),
            role,
        };
        self.call(Method::POST, url, Some(&body)).await
    }

    /// `GET /v1/users` (an admin).
    pub async fn users(&self) -> Result<UserList, ClientError> {
        let url = self.url(&["v1", "users"])?;
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `DELETE /v1/users/{name}` (an admin): the person's token stops working.
    pub async fn remove_user(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&["v1", "users", name])?;
        let _: serde_json::Value = self.call(Method::DELETE, url, None::<&()>).await?;
        Ok(())
    }

    /// `GET /v1/whoami`: whose credential this client holds.
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        let url = self.url(&["v1", "whoami"])?;
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `POST /v1/policy/versions` (an admin): records `text` as the next policy version and
    /// puts it in force (refused with every diagnostic if it does not load).
    pub async fn push_policy(&self, text: &str) -> Result<PolicyVersionView, ClientError> {
        let url = self.url(&["v1", "policy", "versions"])?;
        let body = PolicyPushRequest {
            text: text.to_owned(),
        };
        self.call(Method::POST, url, Some(&body)).await
    }

    /// `GET /v1/policy/versions?diff=true`: every version, newest first, each with its diff
    /// against the one before.
    pub async fn policy_history(&self) -> Result<PolicyHistory, ClientError> {
        let mut url = self.url(&["v1", "policy", "versions"])?;
        url.query_pairs_mut().append_pair("diff", "true");
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `GET /v1/policy/versions/{n}`: one version with its text.
    pub async fn policy_version(&self, version: i64) -> Result<PolicyVersionView, ClientError> {
        let url = self.url(&["v1", "policy", "versions", &version.to_string()])?;
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `POST /v1/policy/rollback` (an admin): pushes version `version`'s text again.
    pub async fn rollback_policy(&self, version: i64) -> Result<PolicyVersionView, ClientError> {
        let url = self.url(&["v1", "policy", "rollback"])?;
        let body = PolicyRollbackRequest { version };
        self.call(Method::POST, url, Some(&body)).await
    }
}
