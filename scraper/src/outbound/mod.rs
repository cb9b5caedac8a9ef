//! What the senders of stored data to other systems share: remote write out
//! ([`crate::remote_write`]) and log forwarding ([`crate::log_forward`]) each run a named
//! queue per config entry ([`queues`]), post batches with retries ([`endpoint`]), and keep
//! their WAL position in a file across restarts.

pub(crate) mod endpoint;
pub(crate) mod queues;
