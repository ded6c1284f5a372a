//! Who sent an upstream message: the role session name the backend gives each session's
//! credentials, and the `SenderId` SQS stamps from it (`<RoleId>:<RoleSessionName>`).
//!
//! The name is `sqs-push-<userId>-<identity tag>`: the user, so the consumer can read the session
//! row the envelope names (its key is userId + sessionId), and the session's own Cognito identity
//! (fresh per session), so the row proves the name is that session's. STS allows
//! `[\w+=,.@-]{2,64}`; 9 + 16 digits + 1 + a 36-character uuid is 62.

use crate::model::ids::UserId;

/// What every browser session's role session name starts with.
pub const SESSION_NAME_PREFIX: &str = "sqs-push-";
/// STS's bound on a role session name.
const MAX_SESSION_NAME: usize = 64;

/// The role session name of the session of `user_id` whose identity is `identity_id`.
pub fn role_session_name(user_id: UserId, identity_id: &str) -> String {
    // A Cognito identity id is `<region>:<uuid>`; ':' is not allowed in a session name.
    let uuid = identity_id.rsplit(':').next().unwrap_or(identity_id);
    let head = format!("{SESSION_NAME_PREFIX}{user_id}-");
    let tag: String = uuid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(MAX_SESSION_NAME - head.len())
        .collect();
    format!("{head}{tag}")
}

/// A sender the consumer may treat as a browser session: the SenderId carried the browser
/// role's id and a session name of the form above.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrowserSender {
    /// The user the name claims (proved only once the session row matches).
    pub user_id: UserId,
    /// The whole role session name: the key of the sender's rate limits, strikes and seqs.
    pub session_name: String,
}

/// Why a SenderId is not a browser session's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    /// No SenderId attribute at all.
    #[error("the message has no SenderId")]
    Missing,
    /// Another principal of the account: a user, a function's role, an admin.
    #[error("the sender is not the browser role")]
    NotBrowserRole,
    /// The browser role, but a session name sqs-push never gives.
    #[error("the browser role with a session name sqs-push does not give")]
    UnknownSessionName,
}

/// Reads a SenderId: a browser session only when the part before the first ':' is exactly
/// `browser_role_id` and the rest is a session name this module makes.
pub fn browser_sender(
    sender_id: Option<&str>,
    browser_role_id: &str,
) -> Result<BrowserSender, SenderError> {
    let sender_id = sender_id.ok_or(SenderError::Missing)?;
    let (role_id, session_name) = sender_id
        .split_once(':')
        .ok_or(SenderError::NotBrowserRole)?;
    if browser_role_id.is_empty() || role_id != browser_role_id {
        return Err(SenderError::NotBrowserRole);
    }
    let rest = session_name
        .strip_prefix(SESSION_NAME_PREFIX)
        .ok_or(SenderError::UnknownSessionName)?;
    let (user, tag) = rest
        .split_once('-')
        .ok_or(SenderError::UnknownSessionName)?;
    let user_id = UserId::parse(user).map_err(|_| SenderError::UnknownSessionName)?;
    if tag.is_empty() || session_name.len() > MAX_SESSION_NAME {
        return Err(SenderError::UnknownSessionName);
    }
    Ok(BrowserSender {
        user_id,
        session_name: session_name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64) -> UserId {
        UserId::try_from(id).unwrap()
    }

    #[test]
    fn names_fit_sts_and_carry_the_user_and_identity() {
        let name = role_session_name(
            user(9_007_199_254_740_991),
            "us-east-1:8b24ff4e-61e4-4444-8d40-21e260a88902",
        );
        assert_eq!(
            name,
            "sqs-push-9007199254740991-8b24ff4e-61e4-4444-8d40-21e260a88902"
        );
        assert!(name.len() <= 64);
        let odd = role_session_name(user(1), &format!("r:{}", "x/".repeat(100)));
        assert!(odd.len() <= 64 && !odd.contains('/'), "{odd}");
    }

    #[test]
    fn only_the_browser_role_with_a_session_name_is_a_browser() {
        let name = role_session_name(user(7), "us-east-1:abc");
        let sender = browser_sender(Some(&format!("AROAROLE:{name}")), "AROAROLE").unwrap();
        assert_eq!(sender.user_id, user(7));
        assert_eq!(sender.session_name, name);
        for (sender_id, error) in [
            (None, SenderError::Missing),
            (Some("AIDAUSER".to_string()), SenderError::NotBrowserRole),
            (
                Some(format!("AROAOTHER:{name}")),
                SenderError::NotBrowserRole,
            ),
            (
                Some(format!("AROAROLE2:{name}")),
                SenderError::NotBrowserRole,
            ),
            (
                Some("AROAROLE:i-1234".to_string()),
                SenderError::UnknownSessionName,
            ),
            (
                Some("AROAROLE:sqs-push-x-abc".to_string()),
                SenderError::UnknownSessionName,
            ),
        ] {
            assert_eq!(
                browser_sender(sender_id.as_deref(), "AROAROLE"),
                Err(error),
                "{sender_id:?}"
            );
        }
        assert_eq!(
            browser_sender(Some(&format!(":{name}")), ""),
            Err(SenderError::NotBrowserRole),
            "an unset role id matches nothing"
        );
    }
}
