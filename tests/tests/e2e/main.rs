//! The end-to-end tests: one binary (one link of the AWS SDK), a module per area, each test
//! against an emulator and a local stack of its own started by `sqs_push_tests::Stack`.

mod channels;
mod dead_letters;
mod dispatch;
mod faults;
mod history;
mod hostile;
mod identities;
mod lifecycle;
mod new_queues;
mod original_stack;
mod redrive;
mod runtime_api;
mod secrets;
mod upstream;
mod walking_skeleton;
