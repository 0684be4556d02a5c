//! In-memory presence.
/// Placeholder replaced by the real implementation.
#[derive(Debug, Default)]
pub struct MemoryPresenceManager;
