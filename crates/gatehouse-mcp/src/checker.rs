//! Asking the daemon, through `gatehouse-client`: one check per `tools/call` (reporting the
//! pause as soon as the daemon names the action, then long-polling it), withdrawals, and the
//! records of tool definitions.
//!
//! *Fail closed*: every failure (daemon down, slow, answering nonsense, still paused at the
//! deadline) is [`CheckOutcome::Failed`], which the session answers with an error result and
//! never forwards.

use std::time::Duration;

use gatehouse_client::protocol::{CheckRequest, Verdict};
use gatehouse_client::{Client, ClientError};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::pins::ToolDefinition;
use crate::session::CheckOutcome;
use crate::tools::DefinitionOutcome;

/// The tool under which tool definitions are recorded (and decided by the policy).
pub const DEFINITION_TOOL: &str = "gatehouse.mcp.tool_definition";
/// How long a changed definition may wait for a person.
pub const DEFINITION_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// What a running check reports to its session's loop.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckEvent {
    /// Paused for a person as `action_id` (sent again after every poll that is still pending).
    Paused {
        seq: u64,
        action_id: String,
    },
    Done {
        seq: u64,
        outcome: CheckOutcome,
    },
    /// News of a tool definition's record: paused for a person, accepted (by a person or the
    /// policy), rejected, or not recorded.
    Definition {
        tool: String,
        hash: String,
        outcome: DefinitionOutcome,
    },
}

/// The daemon, as the proxy uses it.
#[derive(Clone)]
pub struct DaemonChecker {
    client: Client,
    /// From the first request to the verdict of one tool call.
    pub total_deadline: Duration,
    /// How long each poll of a paused action waits (and so how often progress is reported).
    pub poll_wait: Duration,
}

impl DaemonChecker {
    pub fn new(client: Client) -> DaemonChecker {
        DaemonChecker {
            client,
            total_deadline: Duration::from_secs(600),
            poll_wait: Duration::from_secs(10),
        }
    }

    /// Runs the check `seq` and reports to `events` (always ends with a `Done`).
    pub async fn run(
        &self,
        seq: u64,
        request: CheckRequest,
        events: mpsc::UnboundedSender<CheckEvent>,
    ) {
        let outcome = self
            .decide(&request, self.total_deadline, |action_id| {
                let _ = events.send(CheckEvent::Paused {
                    seq,
                    action_id: action_id.to_owned(),
                });
            })
            .await;
        let _ = events.send(CheckEvent::Done { seq, outcome });
    }

    /// Asks the daemon and waits for the verdict (`on_paused` after every poll still pending).
    pub async fn decide(
        &self,
        request: &CheckRequest,
        total_deadline: Duration,
        mut on_paused: impl FnMut(&str),
    ) -> CheckOutcome {
        let deadline = Instant::now() + total_deadline;
        let mut response = match self.client.check_once(request).await {
            Ok(response) => response,
            Err(err) => return failed(&err),
        };
        let mut failures = 0u32;
        loop {
            match response.verdict {
                // Edit then approve: forwarding the edited arguments is not built yet, and the
                // original must never run (fail closed): the model is told the edited call.
                Verdict::Allow if response.updated_input.is_some() => {
                    return CheckOutcome::Reject {
                        reason: format!(
                            "a person approved this call (action {}) only with edited arguments, which this proxy does not forward yet: make this call instead: {}",
                            response.action_id,
                            serde_json::Value::Object(response.updated_input.unwrap_or_default())
                        ),
                        rule_id: response.rule_id,
                    };
                }
                Verdict::Allow => return CheckOutcome::Allow,
                Verdict::Reject => {
                    return CheckOutcome::Reject {
                        reason: response.reason,
                        rule_id: response.rule_id,
                    };
                }
                Verdict::Pending => {}
            }
            let action_id = response.action_id.clone();
            if action_id.is_empty() {
                return CheckOutcome::Failed {
                    message: "the daemon paused the call without naming the action".into(),
                };
            }
            on_paused(&action_id);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return CheckOutcome::Failed {
                        message: format!(
                            "still waiting for a person after {} s (action {action_id})",
                            total_deadline.as_secs()
                        ),
                    };
                }
                match self
                    .client
                    .poll_action(&action_id, self.poll_wait.min(left))
                    .await
                {
                    Ok(polled) if polled.action_id == action_id => {
                        response = polled;
                        failures = 0;
                        break;
                    }
                    Ok(_) => {
                        return CheckOutcome::Failed {
                            message: "the daemon answered a poll for another action".into(),
                        };
                    }
                    // Polls are reads: retried a few times after connection failures.
                    Err(ClientError::Unreachable(_) | ClientError::Timeout) if failures < 4 => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(200 << failures)).await;
                    }
                    Err(err) => return failed(&err),
                }
            }
        }
    }

    /// Withdraws a paused action whose call will never run (`POST /v1/actions/{id}/withdraw`).
    pub async fn withdraw(&self, action_id: &str) -> Result<(), ClientError> {
        self.client.withdraw(action_id).await.map(|_| ())
    }

    /// Records a tool definition as an action and reports what became of it: `Paused` once a
    /// person is asked, then `Accepted` (at once by the policy, or later by a person),
    /// `Rejected` or `Failed`.
    pub async fn record_definition(
        &self,
        definition: ToolDefinition,
        events: mpsc::UnboundedSender<CheckEvent>,
    ) {
        let (tool, hash) = (definition.tool.clone(), definition.hash.clone());
        let report = |outcome: DefinitionOutcome| {
            let _ = events.send(CheckEvent::Definition {
                tool: tool.clone(),
                hash: hash.clone(),
                outcome,
            });
        };
        let input = match serde_json::to_value(&definition) {
            Ok(Value::Object(input)) => input,
            _ => {
                report(DefinitionOutcome::Failed {
                    message: "the definition is not a JSON object".into(),
                });
                return;
            }
        };
        let request = CheckRequest {
            tool: DEFINITION_TOOL.into(),
            input,
            session_id: None,
            agent: Some("gatehouse-mcp".into()),
            tool_use_id: None,
            cwd: None,
            context: None,
            wait_ms: Some(0),
            can_confine: false,
        };
        let mut told: Option<String> = None;
        let outcome = self
            .decide(&request, DEFINITION_DEADLINE, |action_id| {
                if told.as_deref() != Some(action_id) {
                    told = Some(action_id.to_owned());
                    report(DefinitionOutcome::Paused {
                        action_id: action_id.to_owned(),
                    });
                }
            })
            .await;
        report(match outcome {
            CheckOutcome::Allow => DefinitionOutcome::Accepted,
            CheckOutcome::Reject { reason, .. } => DefinitionOutcome::Rejected { reason },
            CheckOutcome::Failed { message } => {
                tracing::warn!(tool = %definition.tool, error = %message, "could not record an MCP tool definition");
                DefinitionOutcome::Failed { message }
            }
        });
    }
}

fn failed(err: &ClientError) -> CheckOutcome {
    CheckOutcome::Failed {
        message: err.to_string(),
    }
}
