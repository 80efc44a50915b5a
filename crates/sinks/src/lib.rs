//! Sinks (DESIGN §6): the canonical file sink ([`file`]) and delivery to
//! the Trupocket ([`trupocket`]) and mibudge ([`mibudge`]) REST APIs through
//! a transactional outbox ([`outbox`]) — exactly once per transaction and
//! sink, across crashes, faults and rate limits.

pub mod file;
pub mod mibudge;
pub mod offline;
pub mod outbox;
pub mod sink;
pub mod trupocket;

#[cfg(test)]
pub(crate) mod testing;

pub use outbox::{deliver, deliver_queued, DeliveryReport};
pub use sink::{mapped_account, marker, markers_in, Finding, Plan, Sink, SinkError, SinkRequest};
