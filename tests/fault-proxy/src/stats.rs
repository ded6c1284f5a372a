//! Counters per operation.

use std::collections::BTreeMap;

use crate::operation::Operation;
use crate::rules::FaultKind;

/// Counters of one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationStats {
    /// Requests received.
    pub seen: u64,
    /// Requests sent on to the emulator (a partial-success rewrite counts once, when it
    /// forwarded anything).
    pub forwarded: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// Batch entries (items, messages, identity ids) withheld by partial-success faults.
    pub withheld_entries: u64,
}

impl OperationStats {
    /// Faults of this kind.
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.faults.get(&kind).copied().unwrap_or(0)
    }

    /// Faults of every kind.
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }

    fn add(&mut self, other: &OperationStats) {
        self.seen += other.seen;
        self.forwarded += other.forwarded;
        self.withheld_entries += other.withheld_entries;
        for (kind, count) in &other.faults {
            *self.faults.entry(*kind).or_default() += count;
        }
    }
}

/// A snapshot of all counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Counters per operation seen so far.
    pub operations: BTreeMap<Operation, OperationStats>,
}

impl Stats {
    /// Counters of the operation with this name, summed over services (zero when unseen).
    pub fn operation(&self, name: &str) -> OperationStats {
        let mut sum = OperationStats::default();
        for (operation, stats) in &self.operations {
            if operation.name == name {
                sum.add(stats);
            }
        }
        sum
    }

    /// Counters of all operations together.
    pub fn total(&self) -> OperationStats {
        let mut sum = OperationStats::default();
        for stats in self.operations.values() {
            sum.add(stats);
        }
        sum
    }
}

/// Live counters behind the proxy's lock.
#[derive(Debug, Default)]
pub(crate) struct Counters(pub(crate) Stats);

impl Counters {
    pub(crate) fn entry(&mut self, operation: &Operation) -> &mut OperationStats {
        self.0.operations.entry(operation.clone()).or_default()
    }
}
