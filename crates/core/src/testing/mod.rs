//! Test doubles, behind the `testing` feature: in-memory adapters of every port (with switches
//! to make them fail) and a clock that moves only when told. Never wired into a function.

pub mod memory;

mod manual_clock;
pub use manual_clock::ManualClock;
