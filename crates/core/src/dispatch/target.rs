//! Who a message is for, and the fields that tell the browser.

use serde_json::Value;

use crate::model::ids::{AccountId, SessionId, UserId};
use crate::model::message::Message;

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One session of one user.
    Session(UserId, SessionId),
    /// Every session of a user.
    User(UserId),
    /// Every session of every user of an account.
    Account(AccountId),
    /// Every session.
    Everyone,
}

impl Target {
    /// Writes the fields that tell the browser who the message was for, as the original
    /// stack did: `userId` for a user, `accountId` for an account, both ids for a session.
    pub fn stamp(&self, message: &mut Message) {
        match self {
            Target::Session(user_id, session_id) => {
                message.set("userId", Value::from(user_id.get()));
                message.set("sessionId", Value::from(session_id.as_str()));
            }
            Target::User(user_id) => message.set("userId", Value::from(user_id.get())),
            Target::Account(account_id) => message.set("accountId", Value::from(account_id.get())),
            Target::Everyone => {}
        }
    }

    /// The user a target names, if it names one: their history gets the message even when they
    /// have no live session.
    pub(crate) fn named_user(&self) -> Option<UserId> {
        match self {
            Target::Session(user_id, _) | Target::User(user_id) => Some(*user_id),
            Target::Account(_) | Target::Everyone => None,
        }
    }
}
