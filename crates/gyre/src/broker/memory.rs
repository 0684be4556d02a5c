//! In-memory broker: history streams kept in this process.
#![allow(dead_code)]
/// Placeholder replaced by the real implementation.
#[derive(Debug, Default)]
pub struct MemoryBroker;
