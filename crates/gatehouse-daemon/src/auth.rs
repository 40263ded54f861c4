//! Who is calling: the agent and approver tokens in the data directory, named people's tokens
//! (`gatehouse user add`, stored as SHA-256 hashes in the ledger), one-time dashboard login
//! codes, and the dashboard's cookie sessions with their CSRF tokens.
//!
//! *Boundary*: the agent token may only check actions; the approver token, people's tokens and
//! dashboard sessions may only decide (by role) and read. Every credential but the agent's
//! names a `Person`: the approver token is the `owner` (an admin), a dashboard session is the
//! person whose credential asked for its login link. Secrets are compared in constant time;
//! a person's token is looked up by its SHA-256 (a 256-bit secret: its hash reveals nothing).

use std::collections::HashMap;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gatehouse_protocol::{OWNER, Role};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const AGENT_TOKEN_FILE: &str = "agent.token";
pub const APPROVER_TOKEN_FILE: &str = "approver.token";
pub const SESSION_COOKIE: &str = "gatehouse_session";
pub const CSRF_HEADER: &str = "x-gatehouse-csrf";

/// The `Set-Cookie` value of a dashboard session; `secure` (the dashboard is served over
/// https, directly or behind a TLS-terminating proxy) keeps browsers from ever sending it over
/// plain http.
pub fn session_set_cookie(session: &str, ttl: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        ttl.as_secs()
    )
}

/// A fresh 256-bit secret, hex-encoded.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison of two secrets.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Creates the data directory with mode 0700 (and tightens an existing one we own).
pub fn prepare_data_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Reads a token file, creating it (mode 0600) with a fresh secret on first start.
fn load_or_create_token(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let token = new_secret();
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(token)
}

/// The two long-lived bearer tokens.
#[derive(Clone)]
pub struct Tokens {
    pub agent: String,
    pub approver: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

impl Tokens {
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Tokens> {
        Ok(Tokens {
            agent: load_or_create_token(&data_dir.join(AGENT_TOKEN_FILE))?,
            approver: load_or_create_token(&data_dir.join(APPROVER_TOKEN_FILE))?,
        })
    }
}

/// SHA-256 of a person's token: what the ledger stores.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A named person (or the `owner`, the approver token's holder) and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub role: Role,
}

impl Person {
    pub fn owner() -> Person {
        Person {
            name: OWNER.into(),
            role: Role::Admin,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Agent,
    /// The data directory's approver token: the owner.
    Approver,
    /// A named person's own token.
    Person(Person),
    /// A dashboard page with a session cookie; `csrf` is what it must echo on state changes.
    Dashboard {
        csrf: String,
        person: Person,
    },
}

impl Caller {
    /// The person behind the credential (`None` for the agent).
    pub fn person(&self) -> Option<Person> {
        match self {
            Caller::Agent => None,
            Caller::Approver => Some(Person::owner()),
            Caller::Person(person) | Caller::Dashboard { person, .. } => Some(person.clone()),
        }
    }
}

struct Session {
    csrf: String,
    expires: Instant,
    person: Person,
}

/// Login codes and sessions are kept by the SHA-256 of their secret (256 random bits: the hash
/// reveals nothing, and a lookup by it leaks nothing about a near guess), which is also how the
/// replicas of a shared ledger know them (`gatehouse_ledger::SharedLogin`).
pub struct Auth {
    tokens: Tokens,
    /// People's tokens by hash (loaded from the ledger, kept in step by `user add/remove`).
    people: Mutex<HashMap<[u8; 32], Person>>,
    login_codes: Mutex<HashMap<[u8; 32], (Instant, Person)>>,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    login_ttl: Duration,
    session_ttl: Duration,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

impl Auth {
    pub fn new(tokens: Tokens, login_ttl: Duration, session_ttl: Duration) -> Auth {
        Auth {
            tokens,
            people: Mutex::new(HashMap::new()),
            login_codes: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            login_ttl,
            session_ttl,
        }
    }

    /// Identifies a bearer token (`Authorization: Bearer …`).
    pub fn bearer(&self, token: &str) -> Option<Caller> {
        // Both comparisons always run, so timing does not tell which token was close.
        let agent = secrets_match(token, &self.tokens.agent);
        let approver = secrets_match(token, &self.tokens.approver);
        match (agent, approver) {
            (true, _) => Some(Caller::Agent),
            (_, true) => Some(Caller::Approver),
            _ => self
                .people
                .lock()
                .ok()?
                .get(&token_hash(token))
                .cloned()
                .map(Caller::Person),
        }
    }

    /// Lets a person's token in (at start-up for every current user, and on `user add`).
    pub fn admit_person(&self, token_hash: [u8; 32], person: Person) {
        if let Ok(mut people) = self.people.lock() {
            people.insert(token_hash, person);
        }
    }

    /// Whether `person` may hold a session: the owner, or a current person with that role.
    pub fn is_current(&self, person: &Person) -> bool {
        *person == Person::owner()
            || self
                .people
                .lock()
                .map(|people| people.values().any(|p| p == person))
                .unwrap_or(false)
    }

    /// Shuts a removed person out: their token, login codes and dashboard sessions.
    pub fn expel_person(&self, name: &str) {
        if let Ok(mut people) = self.people.lock() {
            people.retain(|_, p| p.name != name);
        }
        if let Ok(mut codes) = self.login_codes.lock() {
            codes.retain(|_, (_, p)| p.name != name);
        }
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| s.person.name != name);
        }
    }

    /// Identifies a dashboard session cookie.
    pub fn session(&self, cookie: &str) -> Option<Caller> {
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions
            .get(&token_hash(cookie))
            .map(|s| Caller::Dashboard {
                csrf: s.csrf.clone(),
                person: s.person.clone(),
            })
    }

    /// A new one-time login code for `person`'s dashboard session, valid for the login TTL.
    pub fn issue_login_code(&self, person: Person) -> (String, Duration) {
        let code = new_secret();
        if let Ok(mut codes) = self.login_codes.lock() {
            let now = Instant::now();
            codes.retain(|_, (expires, _)| *expires > now);
            codes.insert(token_hash(&code), (now + self.login_ttl, person));
        }
        (code, self.login_ttl)
    }

    /// Spends a login code issued here: its person if it was valid (it is gone either way).
    pub fn take_login_code(&self, code: &str) -> Option<Person> {
        let mut codes = self.login_codes.lock().ok()?;
        match codes.remove(&token_hash(code)) {
            Some((expires, person)) if expires > Instant::now() => Some(person),
            _ => None,
        }
    }

    /// Opens a dashboard session for `person`: the cookie value and its CSRF token.
    pub fn open_session(&self, person: Person) -> Option<(String, String)> {
        let token = new_secret();
        let csrf = new_secret();
        self.adopt_session(token_hash(&token), csrf.clone(), person, self.session_ttl)?;
        Some((token, csrf))
    }

    /// Lets in a session opened elsewhere (another replica), by its cookie's hash.
    pub fn adopt_session(
        &self,
        cookie_hash: [u8; 32],
        csrf: String,
        person: Person,
        ttl: Duration,
    ) -> Option<()> {
        let session = Session {
            csrf,
            expires: Instant::now() + ttl,
            person,
        };
        self.sessions.lock().ok()?.insert(cookie_hash, session);
        Some(())
    }

    /// Spends a login code: returns a new session cookie value if the code was valid.
    pub fn redeem_login_code(&self, code: &str) -> Option<String> {
        let person = self.take_login_code(code)?;
        self.open_session(person).map(|(token, _)| token)
    }

    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let tokens = Tokens {
            agent: new_secret(),
            approver: new_secret(),
        };
        Auth::new(tokens, Duration::from_secs(60), Duration::from_secs(60))
    }

    #[test]
    fn tokens_identify_their_role_and_nothing_else() {
        let auth = auth();
        assert_eq!(auth.bearer(&auth.tokens.agent.clone()), Some(Caller::Agent));
        assert_eq!(
            auth.bearer(&auth.tokens.approver.clone()),
            Some(Caller::Approver)
        );
        assert_eq!(auth.bearer("nope"), None);
        assert_eq!(auth.bearer(""), None);
    }

    #[test]
    fn a_person_token_names_its_person_until_removed() {
        let auth = auth();
        let token = new_secret();
        let alice = Person {
            name: "alice".into(),
            role: Role::Reviewer,
        };
        auth.admit_person(token_hash(&token), alice.clone());
        assert_eq!(auth.bearer(&token), Some(Caller::Person(alice.clone())));
        let (code, _) = auth.issue_login_code(alice.clone());
        let session = auth.redeem_login_code(&code).unwrap();
        assert_eq!(auth.session(&session).and_then(|c| c.person()), Some(alice));
        auth.expel_person("alice");
        assert_eq!(
            auth.bearer(&token),
            None,
            "a removed person's token is refused"
        );
        assert_eq!(auth.session(&session), None, "and their sessions end");
    }

    #[test]
    fn a_login_code_works_once() {
        let auth = auth();
        let (code, _) = auth.issue_login_code(Person::owner());
        let session = auth.redeem_login_code(&code).unwrap();
        assert!(matches!(
            auth.session(&session),
            Some(Caller::Dashboard { .. })
        ));
        assert_eq!(
            auth.redeem_login_code(&code),
            None,
            "a login code is single-use"
        );
        assert_eq!(auth.session("forged"), None);
    }

    #[test]
    fn token_files_are_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        prepare_data_dir(&data).unwrap();
        let first = Tokens::load_or_create(&data).unwrap();
        let again = Tokens::load_or_create(&data).unwrap();
        assert_eq!(first.agent, again.agent);
        assert_ne!(first.agent, first.approver);
        let mode = std::fs::metadata(data.join(AGENT_TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
}
