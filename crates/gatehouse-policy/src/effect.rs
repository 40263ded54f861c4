//! The three effects a rule (or a policy's default) can have on an action.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What Tier 1 says about an action.
///
/// The declaration order is also the precedence order: when several rules
/// match, a `reject` beats a `pause`, which beats an `allow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Let the action run.
    Allow,
    /// Refuse the action.
    Reject,
    /// Hold the action until a person decides (Tier 2 only advises).
    Pause,
}

impl Effect {
    /// Every effect, strongest first.
    pub(crate) const BY_PRECEDENCE: [Effect; 3] = [Effect::Reject, Effect::Pause, Effect::Allow];

    /// How restrictive the effect is: allow < pause < reject.
    pub(crate) fn strength(self) -> u8 {
        match self {
            Effect::Allow => 0,
            Effect::Pause => 1,
            Effect::Reject => 2,
        }
    }

    /// The lowercase name used in policy files and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Reject => "reject",
            Effect::Pause => "pause",
        }
    }

    /// Parses the lowercase name used in policy files.
    pub(crate) fn from_name(name: &str) -> Option<Effect> {
        Effect::BY_PRECEDENCE
            .into_iter()
            .find(|effect| effect.as_str() == name)
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for (effect, name) in [
            (Effect::Allow, "allow"),
            (Effect::Reject, "reject"),
            (Effect::Pause, "pause"),
        ] {
            assert_eq!(effect.as_str(), name);
            assert_eq!(effect.to_string(), name);
            assert_eq!(Effect::from_name(name), Some(effect));
            let json = serde_json::to_string(&effect).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Effect>(&json).unwrap(), effect);
        }
        assert_eq!(Effect::from_name("Allow"), None);
        assert_eq!(Effect::from_name("deny"), None);
    }
}
