//! Settings of the emulation endpoints. Defaults follow Centrifugo (`http_stream.*`,
//! `sse.*`, `emulation.*`).

use std::time::Duration;

/// Settings of a streaming endpoint (HTTP-streaming or SSE).
///
/// ```
/// use gyre::StreamConfig;
/// let config = StreamConfig::default();
/// assert_eq!(config.max_request_body_size, 65536);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamConfig {
    /// Largest request body (the first commands) in bytes; larger gets 413.
    /// Zero means the default, 64 KiB.
    pub max_request_body_size: usize,
    /// How long the response may refuse one more chunk before the client is dropped
    /// (3009 "write error").
    pub write_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_request_body_size: DEFAULT_BODY_LIMIT,
            write_timeout: Duration::from_secs(1),
        }
    }
}

/// Settings of the `/emulation` endpoint.
///
/// ```
/// use gyre::EmulationConfig;
/// assert_eq!(EmulationConfig::default().max_request_body_size, 65536);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmulationConfig {
    /// Largest request body in bytes; larger gets 413. Zero means the default, 64 KiB.
    pub max_request_body_size: usize,
}

impl Default for EmulationConfig {
    fn default() -> Self {
        EmulationConfig {
            max_request_body_size: DEFAULT_BODY_LIMIT,
        }
    }
}

/// Upstream's limit when none is configured.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The configured limit, or the default for zero.
pub(crate) fn body_limit(configured: usize) -> usize {
    if configured == 0 {
        DEFAULT_BODY_LIMIT
    } else {
        configured
    }
}
