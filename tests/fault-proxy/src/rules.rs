//! Rules: which operation gets which fault, how often; and the seeded decisions.

use std::time::Duration;

use crate::operation::Operation;

/// What the proxy does to a request a rule fires on.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// HTTP 500 in the protocol's error shape (`InternalFailure` / `InternalError` /
    /// `ServiceException`); the SDK classifies it as a transient error.
    ServerError,
    /// The service's throttling error (`ProvisionedThroughputExceededException`,
    /// `RequestThrottled`, `TooManyRequestsException`, `Throttling`, `ThrottlingException`).
    Throttling,
    /// Any error code with any status, in the protocol's error shape.
    Error {
        /// HTTP status, e.g. 400.
        status: u16,
        /// Error code as the SDK reports it, e.g. `ThrottlingException`.
        code: String,
    },
    /// Close the TCP connection (RST) without answering; nothing is forwarded.
    ConnectionReset,
    /// Forward the request, let the emulator act on it, then close the connection (RST)
    /// without answering: the call took effect but the caller sees an IO error (its retry
    /// makes a duplicate).
    ResetAfterForward,
    /// Wait, then forward the request unchanged.
    Delay(Duration),
    /// Forward the request unchanged, then wait before answering (the call has already taken
    /// effect when a client-side timeout fires).
    DelayAnswer(Duration),
    /// DynamoDB `BatchWriteItem`: forward some items, answer the rest as `UnprocessedItems`.
    UnprocessedItems(Withhold),
    /// SQS `SendMessageBatch` (JSON protocol): forward some entries, answer the rest as
    /// `Failed` with `SenderFault: false` and code `InternalError`.
    FailedEntries(Withhold),
    /// Cognito `DeleteIdentities`: forward some ids, answer the rest as
    /// `UnprocessedIdentityIds` with `ErrorCode: InternalServerError`.
    UnprocessedIdentityIds(Withhold),
}

impl Fault {
    /// An error with this status and code, e.g. `Fault::error(400, "ThrottlingException")`.
    pub fn error(status: u16, code: impl Into<String>) -> Self {
        Fault::Error {
            status,
            code: code.into(),
        }
    }

    /// The kind under which the stats count this fault.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::ServerError => FaultKind::ServerError,
            Fault::Throttling => FaultKind::Throttling,
            Fault::Error { .. } => FaultKind::Error,
            Fault::ConnectionReset => FaultKind::ConnectionReset,
            Fault::ResetAfterForward => FaultKind::ResetAfterForward,
            Fault::Delay(_) => FaultKind::Delay,
            Fault::DelayAnswer(_) => FaultKind::DelayAnswer,
            Fault::UnprocessedItems(_) => FaultKind::UnprocessedItems,
            Fault::FailedEntries(_) => FaultKind::FailedEntries,
            Fault::UnprocessedIdentityIds(_) => FaultKind::UnprocessedIdentityIds,
        }
    }
}

/// Which entries of a batch a partial-success fault keeps from the emulator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Withhold {
    /// Forward the first `n` entries (in request order; DynamoDB tables by name), withhold
    /// the rest.
    AllButFirst(usize),
    /// Withhold each entry independently with this probability, drawn from the rule's RNG.
    Each(f64),
}

/// A fault kind, without parameters: the key of the fault counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// [`Fault::ServerError`].
    ServerError,
    /// [`Fault::Throttling`].
    Throttling,
    /// [`Fault::Error`].
    Error,
    /// [`Fault::ConnectionReset`].
    ConnectionReset,
    /// [`Fault::ResetAfterForward`].
    ResetAfterForward,
    /// [`Fault::Delay`].
    Delay,
    /// [`Fault::DelayAnswer`].
    DelayAnswer,
    /// [`Fault::UnprocessedItems`].
    UnprocessedItems,
    /// [`Fault::FailedEntries`].
    FailedEntries,
    /// [`Fault::UnprocessedIdentityIds`].
    UnprocessedIdentityIds,
}

/// When a rule fires on the requests it matches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    /// With this probability (clamped to 0..=1), drawn from the rule's seeded RNG.
    Rate(f64),
    /// On the Nth, 2Nth, 3Nth... matching request (1-based); 0 never fires.
    EveryNth(u64),
}

/// One fault rule: an operation (and optionally a service), a fault, a trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    service: Option<String>,
    operation: String,
    fault: Fault,
    trigger: Trigger,
    max_faults: Option<u64>,
}

impl Rule {
    /// Fires `fault` on requests to `operation` (`"*"`: every operation) with probability `rate`.
    /// The name alone matches every service that has it (`GetRecords`: Kinesis and DynamoDB
    /// Streams); add [`Rule::service`] to narrow it.
    pub fn new(operation: impl Into<String>, fault: Fault, rate: f64) -> Self {
        Self {
            service: None,
            operation: operation.into(),
            fault,
            trigger: Trigger::Rate(rate),
            max_faults: None,
        }
    }

    /// Fires `fault` on every `n`th request to `operation` (`"*"`: every operation).
    pub fn every(operation: impl Into<String>, fault: Fault, n: u64) -> Self {
        Self {
            trigger: Trigger::EveryNth(n),
            ..Self::new(operation, fault, 0.0)
        }
    }

    /// Matches only this service too (`sqs`, `dynamodb`, `dynamodbstreams`, `kinesis`, ...).
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Fires at most `n` times (until the rules are set again).
    pub fn max_faults(mut self, n: u64) -> Self {
        self.max_faults = Some(n);
        self
    }

    /// Whether the rule applies to `operation`.
    pub fn matches(&self, operation: &Operation) -> bool {
        (self.operation == "*" || self.operation == operation.name)
            && self
                .service
                .as_ref()
                .is_none_or(|service| *service == operation.service)
    }

    /// The fault this rule injects.
    pub fn fault(&self) -> &Fault {
        &self.fault
    }

    /// When this rule fires.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }
}

/// SplitMix64: tiny, fast, and its sequence for a seed never changes between versions.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (clamped; NaN counts as 0).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.next_f64() < p
    }
}

/// A rule with its own RNG and counters, so its decisions depend only on the order of the
/// requests it matches.
#[derive(Debug)]
struct RuleState {
    rule: Rule,
    rng: SplitMix64,
    matched: u64,
    fired: u64,
}

/// What to do with one request.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) fault: Fault,
    /// For partial-success faults: per entry, `true` = withhold.
    pub(crate) withheld: Vec<bool>,
}

/// The active rules and their seeded state.
#[derive(Debug, Default)]
pub(crate) struct RuleSet {
    seed: u64,
    states: Vec<RuleState>,
}

impl RuleSet {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            states: Vec::new(),
        }
    }

    /// Replaces the rules; every rule starts from a fresh RNG derived from the seed and its
    /// position.
    pub(crate) fn set(&mut self, rules: Vec<Rule>) {
        let seed = self.seed;
        self.states = rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                let mut mix =
                    SplitMix64::new(seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
                RuleState {
                    rule,
                    rng: SplitMix64::new(mix.next_u64()),
                    matched: 0,
                    fired: 0,
                }
            })
            .collect();
    }

    pub(crate) fn push(&mut self, rule: Rule) {
        let mut rules: Vec<Rule> = self.states.drain(..).map(|state| state.rule).collect();
        rules.push(rule);
        self.set(rules);
    }

    pub(crate) fn rules(&self) -> Vec<Rule> {
        self.states.iter().map(|state| state.rule.clone()).collect()
    }

    /// Sets the seed and restarts the current rules from it.
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        let rules = self.rules();
        self.set(rules);
    }

    /// Every rule matching `operation` draws; the first that fires decides. `batch` is the
    /// partial-success fault this request allows and its number of entries (`None`: the
    /// request has no batch to split, so partial-success rules do not fire on it).
    pub(crate) fn decide(
        &mut self,
        operation: &Operation,
        batch: Option<(FaultKind, usize)>,
    ) -> Option<Decision> {
        let mut decision = None;
        for state in &mut self.states {
            if !state.rule.matches(operation) {
                continue;
            }
            state.matched += 1;
            let fires = match state.rule.trigger {
                Trigger::Rate(rate) => state.rng.chance(rate),
                Trigger::EveryNth(n) => n != 0 && state.matched % n == 0,
            };
            let exhausted = state.rule.max_faults.is_some_and(|max| state.fired >= max);
            if !fires || exhausted || decision.is_some() {
                continue;
            }
            let withheld = match &state.rule.fault {
                Fault::UnprocessedItems(w)
                | Fault::FailedEntries(w)
                | Fault::UnprocessedIdentityIds(w) => {
                    let kind = state.rule.fault.kind();
                    let Some((_, count)) = batch.filter(|(allowed, _)| *allowed == kind) else {
                        continue;
                    };
                    match *w {
                        Withhold::AllButFirst(keep) => (0..count).map(|i| i >= keep).collect(),
                        Withhold::Each(p) => (0..count).map(|_| state.rng.chance(p)).collect(),
                    }
                }
                _ => Vec::new(),
            };
            state.fired += 1;
            decision = Some(Decision {
                fault: state.rule.fault.clone(),
                withheld,
            });
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str) -> Operation {
        Operation::new("sqs", name)
    }

    #[test]
    fn rates_are_deterministic_per_seed_and_rule() {
        let count = |seed: u64| {
            let mut set = RuleSet::new(seed);
            set.set(vec![Rule::new("SendMessageBatch", Fault::ServerError, 0.1)]);
            (0..1000)
                .filter(|_| set.decide(&op("SendMessageBatch"), None).is_some())
                .count()
        };
        assert_eq!(count(7), count(7));
        let n = count(7);
        assert!((60..140).contains(&n), "{n}");
        // Requests to other operations do not move the rule's sequence.
        let mut a = RuleSet::new(3);
        let mut b = RuleSet::new(3);
        let rules = vec![Rule::new("SendMessageBatch", Fault::ServerError, 0.5)];
        a.set(rules.clone());
        b.set(rules);
        let mut seq_a = Vec::new();
        let mut seq_b = Vec::new();
        for i in 0..100 {
            seq_a.push(a.decide(&op("SendMessageBatch"), None).is_some());
            if i % 3 == 0 {
                b.decide(&op("DeleteQueue"), None);
            }
            seq_b.push(b.decide(&op("SendMessageBatch"), None).is_some());
        }
        assert_eq!(seq_a, seq_b);
    }

    #[test]
    fn every_nth_max_faults_service_and_wildcard() {
        let mut set = RuleSet::new(0);
        set.set(vec![
            Rule::every("*", Fault::Throttling, 3)
                .service("sqs")
                .max_faults(2),
        ]);
        let fired: Vec<bool> = (0..12)
            .map(|_| set.decide(&op("X"), None).is_some())
            .collect();
        let expected = [
            false, false, true, false, false, true, false, false, false, false, false, false,
        ];
        assert_eq!(fired, expected);
        assert!(set.decide(&Operation::new("dynamodb", "X"), None).is_none());
        set.set(vec![
            Rule::every("X", Fault::Throttling, 0),
            Rule::new("X", Fault::ServerError, f64::NAN),
        ]);
        assert!((0..50).all(|_| set.decide(&op("X"), None).is_none()));
    }

    #[test]
    fn partial_faults_need_a_batch_and_mark_entries() {
        let mut set = RuleSet::new(0);
        set.set(vec![Rule::new(
            "SendMessageBatch",
            Fault::FailedEntries(Withhold::AllButFirst(2)),
            1.0,
        )]);
        assert!(set.decide(&op("SendMessageBatch"), None).is_none());
        let other = Some((FaultKind::UnprocessedItems, 4));
        assert!(set.decide(&op("SendMessageBatch"), other).is_none());
        let decision = set
            .decide(&op("SendMessageBatch"), Some((FaultKind::FailedEntries, 4)))
            .unwrap();
        assert_eq!(decision.withheld, [false, false, true, true]);
        set.set(vec![Rule::new(
            "SendMessageBatch",
            Fault::FailedEntries(Withhold::Each(1.0)),
            1.0,
        )]);
        let decision = set
            .decide(&op("SendMessageBatch"), Some((FaultKind::FailedEntries, 3)))
            .unwrap();
        assert_eq!(decision.withheld, [true, true, true]);
    }
}
