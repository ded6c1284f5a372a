//! Cleanup: deleting what sessions leave behind — the queue and identity of a removed or replaced
//! row, from the sessions table's stream ([`stream`]), and queues no row names at all
//! ([`orphans`], the `/cleanup` sweep).

pub mod orphans;
pub mod stream;
