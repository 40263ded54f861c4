//! Named people: `gatehouse user add|list|remove`. A user is a chained ledger record holding
//! the name, the role and the SHA-256 of the person's token (handed out once, never stored);
//! the daemon keeps the hashes in `Auth` so a person's token identifies them.
//!
//! *Boundary*: only an admin (the owner's approver token, or a person with role `admin`)
//! manages users; nobody can add a second `owner`, nor remove the one they are.

use gatehouse_ledger::{Ledger, LedgerError, NewUser, UserChange};
use gatehouse_protocol::{NewUserRequest, NewUserResponse, OWNER, UserList, UserView, WhoAmI};

use crate::app::{ActionError, App};
use crate::auth::{Auth, Person, new_secret, token_hash};
use crate::clock::now_ms;

/// Names a person may have: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`; not `owner`.
fn check_name(name: &str) -> Result<(), ActionError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if !valid {
        return Err(ActionError::Invalid {
            field: "name",
            message: "a user name is 1 to 64 letters, digits, '.', '_', '-' or '@'".into(),
        });
    }
    if name.eq_ignore_ascii_case(OWNER) || name.eq_ignore_ascii_case("agent") {
        return Err(ActionError::Invalid {
            field: "name",
            message: format!("`{name}` is reserved (the approver token is `owner`)"),
        });
    }
    Ok(())
}

fn require_admin(actor: &Person) -> Result<(), ActionError> {
    if actor.role.may_administer() {
        Ok(())
    } else {
        Err(ActionError::Forbidden(format!(
            "{} has role {}: only an admin manages users and the policy",
            actor.name,
            actor.role.as_str()
        )))
    }
}

/// Lets every current user's token in (at start-up).
pub async fn admit_users(ledger: &Ledger, auth: &Auth) -> Result<usize, LedgerError> {
    let users = match ledger.users().await {
        Ok(users) => users,
        // A backend without named users yet: the owner's token still works.
        Err(LedgerError::Unsupported(_)) => return Ok(0),
        Err(err) => return Err(err),
    };
    for user in &users {
        auth.admit_person(
            user.token_hash,
            Person {
                name: user.name.clone(),
                role: user.role,
            },
        );
    }
    Ok(users.len())
}

impl App {
    /// Adds a person and returns their token (shown this once).
    pub async fn add_user(
        &self,
        actor: &Person,
        request: NewUserRequest,
    ) -> Result<NewUserResponse, ActionError> {
        require_admin(actor)?;
        check_name(&request.name)?;
        let token = new_secret();
        let hash = token_hash(&token);
        let change = self
            .ledger
            .add_user(NewUser {
                name: request.name.clone(),
                role: request.role,
                token_hash: hash,
                actor: actor.name.clone(),
                recorded_at_ms: now_ms(),
            })
            .await?;
        let user = match change {
            UserChange::Added(user) => user,
            _ => {
                return Err(ActionError::Conflict {
                    code: "user_exists",
                    message: format!("a user named {} exists already", request.name),
                });
            }
        };
        self.auth.admit_person(
            hash,
            Person {
                name: user.name.clone(),
                role: user.role,
            },
        );
        tracing::info!(user = %user.name, role = user.role.as_str(), by = %actor.name, "user added");
        Ok(NewUserResponse {
            user: UserView {
                name: user.name,
                role: user.role,
                added_at_ms: user.added_at_ms,
                added_by: user.added_by,
            },
            token,
        })
    }

    /// The current users (admins only).
    pub async fn users(&self, actor: &Person) -> Result<UserList, ActionError> {
        require_admin(actor)?;
        let users = self.ledger.users().await?;
        Ok(UserList {
            users: users
                .into_iter()
                .map(|user| UserView {
                    name: user.name,
                    role: user.role,
                    added_at_ms: user.added_at_ms,
                    added_by: user.added_by,
                })
                .collect(),
        })
    }

    /// Removes a person: their token, login links and sessions stop working at once.
    pub async fn remove_user(&self, actor: &Person, name: &str) -> Result<(), ActionError> {
        require_admin(actor)?;
        if name == actor.name {
            return Err(ActionError::Invalid {
                field: "name",
                message: "you cannot remove yourself; ask another admin (or the owner)".into(),
            });
        }
        match self.ledger.remove_user(name, &actor.name, now_ms()).await? {
            UserChange::Removed => {
                self.auth.expel_person(name);
                tracing::info!(user = %name, by = %actor.name, "user removed");
                Ok(())
            }
            _ => Err(ActionError::NotFound(format!("user {name}"))),
        }
    }

    /// Who the credential belongs to.
    pub fn whoami(&self, person: &Person) -> WhoAmI {
        WhoAmI {
            name: person.name.clone(),
            role: person.role,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_owner_is_reserved() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("bob.smith@example.com").is_ok());
        for bad in ["", "owner", "OWNER", "agent", "a b", "x/y", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
