//! Unguessable queue names: `<prefix>_` followed by 256 random bits in base64url.
//!
//! The separator is `_` because a stage name cannot contain one: `sqs-push-prod_*` (the IAM
//! pattern of stage `prod`) can never match a queue of stage `prod-eu` (`sqs-push-prod-eu_…`),
//! where `sqs-push-prod-*` would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::fill_random;

/// SQS's limit on a queue name.
pub const MAX_QUEUE_NAME_LEN: usize = 80;
/// Length of 32 random bytes in unpadded base64url.
pub const RANDOM_PART_LEN: usize = 43;

/// Why a prefix cannot make valid queue names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueNameError {
    /// SQS names allow only letters, digits, '-' and '_'; '_' is the separator.
    #[error(
        "queue prefix {0:?} may contain only A-Z, a-z, 0-9 and '-' ('_' separates it from the random part)"
    )]
    InvalidCharacters(String),
    /// The prefix leaves fewer than 43 characters for the random part.
    #[error(
        "queue prefix {prefix:?} is {len} characters; at most {max} leave room for '-' and 43 random characters within SQS's 80"
    )]
    TooLong {
        /// The offending prefix.
        prefix: String,
        /// Its length.
        len: usize,
        /// The longest prefix that fits.
        max: usize,
    },
}

/// Between the prefix and the random part; no prefix contains it.
pub const SEPARATOR: char = '_';

/// The separator of the versions before `_`: names `<prefix>-<43 random>`, which sessions made
/// before an upgrade keep until they end (docs/operations.md, "Upgrading").
pub const LEGACY_SEPARATOR: char = '-';

/// Makes queue names for one stage, e.g. `sqs-push-prod_<43 chars>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNameGenerator {
    prefix: String,
}

impl QueueNameGenerator {
    /// The longest prefix that leaves room for the separator and the random part.
    pub const MAX_PREFIX_LEN: usize = MAX_QUEUE_NAME_LEN - 1 - RANDOM_PART_LEN;

    /// Checks the prefix once, so every generated name is valid.
    pub fn new(prefix: &str) -> Result<Self, QueueNameError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
        if prefix.is_empty() || !prefix.bytes().all(allowed) {
            return Err(QueueNameError::InvalidCharacters(prefix.to_string()));
        }
        if prefix.len() > Self::MAX_PREFIX_LEN {
            return Err(QueueNameError::TooLong {
                prefix: prefix.to_string(),
                len: prefix.len(),
                max: Self::MAX_PREFIX_LEN,
            });
        }
        Ok(Self {
            prefix: prefix.to_string(),
        })
    }

    /// The prefix every name starts with (without the separator).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What every name starts with: the prefix and the separator (ListQueues' prefix, the
    /// start of the IAM resource pattern).
    pub fn name_prefix(&self) -> String {
        format!("{}{SEPARATOR}", self.prefix)
    }

    /// A fresh name from 32 bytes of the OS CSPRNG.
    pub fn generate(&self) -> String {
        let mut random = [0u8; 32];
        fill_random(&mut random);
        let mut name = String::with_capacity(self.prefix.len() + 1 + RANDOM_PART_LEN);
        name.push_str(&self.prefix);
        name.push(SEPARATOR);
        URL_SAFE_NO_PAD.encode_string(random, &mut name);
        name
    }

    /// True when `name` is one of this generator's names (used to sweep orphans safely).
    pub fn owns(&self, name: &str) -> bool {
        self.owns_with(name, SEPARATOR)
    }

    /// What names of the versions before the `_` separator start with: `<prefix>-`.
    pub fn legacy_name_prefix(&self) -> String {
        format!("{}{LEGACY_SEPARATOR}", self.prefix)
    }

    /// True when `name` is a name this stage's generator made before the `_` separator:
    /// `<prefix>-` and 43 random characters, exactly. The length keeps other stages out: a name
    /// of stage `prod-eu` (`sqs-push-prod-eu_…`, or the old `sqs-push-prod-eu-…`) is longer than
    /// any of stage `prod`.
    pub fn owns_legacy(&self, name: &str) -> bool {
        self.owns_with(name, LEGACY_SEPARATOR)
    }

    fn owns_with(&self, name: &str, separator: char) -> bool {
        name.len() == self.prefix.len() + 1 + RANDOM_PART_LEN
            && name.starts_with(&self.prefix)
            && name.as_bytes()[self.prefix.len()] == separator as u8
            && name[self.prefix.len() + 1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn legacy_names_are_the_stages_own_dash_names_of_exactly_43_characters() {
        let prod = QueueNameGenerator::new("sqs-push-prod").unwrap();
        let prod_eu = QueueNameGenerator::new("sqs-push-prod-eu").unwrap();
        let random = "A".repeat(RANDOM_PART_LEN);
        assert!(prod.owns_legacy(&format!("sqs-push-prod-{random}")));
        assert_eq!(prod.legacy_name_prefix(), "sqs-push-prod-");
        // not a new name, and new names are not legacy ones
        assert!(!prod.owns(&format!("sqs-push-prod-{random}")));
        assert!(!prod.owns_legacy(&prod.generate()));
        // another stage's names, old or new, never
        assert!(!prod.owns_legacy(&prod_eu.generate()));
        assert!(!prod.owns_legacy(&format!("sqs-push-prod-eu-{random}")));
        // the stage's other queues (upstream) and short or odd names, never
        assert!(!prod.owns_legacy("sqs-push-prod-upstream"));
        assert!(!prod.owns_legacy(&format!("sqs-push-prod-{}", &random[1..])));
        assert!(!prod.owns_legacy(&format!("sqs-push-prod-{}.", &random[1..])));
    }

    #[test]
    fn names_are_prefix_underscore_and_43_url_safe_characters() {
        let generator = QueueNameGenerator::new("sqs-push-local").unwrap();
        let name = generator.generate();
        let random = name.strip_prefix("sqs-push-local_").unwrap();
        assert_eq!(random.len(), RANDOM_PART_LEN);
        assert!(
            random
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(random).unwrap().len(), 32);
        assert!(generator.owns(&name));
    }

    #[test]
    fn names_do_not_repeat() {
        let generator = QueueNameGenerator::new("p").unwrap();
        let names: HashSet<String> = (0..1000).map(|_| generator.generate()).collect();
        assert_eq!(names.len(), 1000);
    }

    #[test]
    fn the_longest_prefix_makes_an_80_character_name() {
        let prefix = "a".repeat(QueueNameGenerator::MAX_PREFIX_LEN);
        let name = QueueNameGenerator::new(&prefix).unwrap().generate();
        assert_eq!(name.len(), MAX_QUEUE_NAME_LEN);
    }

    #[test]
    fn a_prefix_that_leaves_no_room_is_refused_with_the_limit() {
        let prefix = "a".repeat(QueueNameGenerator::MAX_PREFIX_LEN + 1);
        let error = QueueNameGenerator::new(&prefix).unwrap_err();
        assert!(error.to_string().contains("at most 36"), "{error}");
    }

    #[test]
    fn a_prefix_with_forbidden_characters_is_refused() {
        for prefix in ["", "a.b", "a b", "a/b", "ü", "a_b"] {
            assert!(matches!(
                QueueNameGenerator::new(prefix),
                Err(QueueNameError::InvalidCharacters(_))
            ));
        }
    }

    #[test]
    fn owns_rejects_names_of_other_stages() {
        let generator = QueueNameGenerator::new("sqs-push-local").unwrap();
        let other = QueueNameGenerator::new("sqs-push-localx")
            .unwrap()
            .generate();
        assert!(!generator.owns(&other));
        assert!(!generator.owns("sqs-push-local-short"));
    }

    /// The IAM pattern of one stage, `<prefix>_*`, as IAM matches it (a prefix match).
    #[test]
    fn no_stage_s_names_start_with_another_stage_s_name_prefix() {
        let prod = QueueNameGenerator::new("sqs-push-prod").unwrap();
        let prod_eu = QueueNameGenerator::new("sqs-push-prod-eu").unwrap();
        for _ in 0..100 {
            assert!(!prod_eu.generate().starts_with(&prod.name_prefix()));
            assert!(!prod.generate().starts_with(&prod_eu.name_prefix()));
            assert!(prod.generate().starts_with(&prod.name_prefix()));
        }
        assert!(!prod.owns(&prod_eu.generate()));
    }
}
