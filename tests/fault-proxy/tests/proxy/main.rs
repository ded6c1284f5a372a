//! The fault proxy's tests, one binary: on the wire against a fake upstream (`wire`), and
//! between the real AWS SDK clients and the emulator (`sdk`).

mod sdk;
mod support;
mod wire;
