//! Stream recovery: pure logic deciding what a resubscribing client missed.
//!
//! The session drives the I/O (buffering live publications, reading history); these
//! functions only decide, so they are tested without sockets or timers (PROTOCOL §7.3, §9).

// The client session is the caller; until it lands these are only used by tests.
#![cfg_attr(not(test), allow(dead_code))]

use crate::broker::{HistoryResult, Publication, StreamPosition};

/// Most publications a recovering subscribe reads from history
/// (`client.recovery_max_publication_limit`). Missing more than this means "not recovered".
pub(crate) const DEFAULT_RECOVERY_MAX_PUBLICATION_LIMIT: i32 = 300;

/// Whether `history` (read with since = the client's position and limit = recovery cap) proves
/// the client missed nothing it cannot get back. True iff since.epoch is empty or equals the
/// stream epoch, AND either (no publications and top.offset == since.offset) or (first pub
/// offset == since.offset + 1 and last pub offset == top.offset).
///
/// The count of publications must also equal `top - since`, so a stream with a hole in the
/// middle (possible with engines other than ours) is never taken for a complete one.
pub(crate) fn is_recovered(history: &HistoryResult, since: &StreamPosition) -> bool {
    let top = &history.position;
    if !since.epoch.is_empty() && since.epoch != top.epoch {
        return false;
    }
    let pubs = &history.publications;
    let (Some(first), Some(last)) = (pubs.first(), pubs.last()) else {
        return top.offset == since.offset;
    };
    let Some(missed) = top.offset.checked_sub(since.offset) else {
        return false;
    };
    since.offset.checked_add(1) == Some(first.offset)
        && last.offset == top.offset
        && u64::try_from(pubs.len()) == Ok(missed)
}

/// Merges publications recovered from history with live ones buffered while history was read:
/// dedup by offset, ordered by offset; returns None when they cannot be joined without a gap
/// (caller then disconnects with 3010 / unsubscribes 2500).
///
/// Either side may be empty. Every publication must carry a stream offset (>= 1); offsets
/// of 0 (a channel without history) cannot be ordered and make the merge fail.
pub(crate) fn merge_publications(
    recovered: Vec<Publication>,
    buffered: Vec<Publication>,
) -> Option<Vec<Publication>> {
    let mut all = recovered;
    all.extend(buffered);
    // Stable sort: of two copies of one offset the recovered one comes first and is kept;
    // both are the same publication, so which one survives does not matter for content.
    all.sort_by_key(|p| p.offset);
    all.dedup_by_key(|p| p.offset);
    if all.first().is_some_and(|p| p.offset == 0) {
        return None;
    }
    let contiguous = all
        .windows(2)
        .all(|w| w[0].offset.checked_add(1) == Some(w[1].offset));
    contiguous.then_some(all)
}

/// What to do with a live publication of a positioned subscription (PROTOCOL §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PositionCheck {
    /// The next publication: deliver it (the position has advanced).
    Deliver,
    /// Already delivered (for example both recovered and buffered): skip silently.
    Duplicate,
    /// A gap or a new epoch: the client missed something; unsubscribe 2500 / disconnect 3010.
    InsufficientState,
}

/// Positioning of live publications for one subscription.
///
/// offset == current+1 (same epoch) → Deliver and advance; offset <= current → Duplicate;
/// gap or epoch change → InsufficientState.
pub(crate) fn check_position(
    current: &mut StreamPosition,
    publication_offset: u64,
    publication_epoch: &str,
) -> PositionCheck {
    // A changed epoch means the stream was lost and recreated: even a small offset is not
    // a duplicate but a publication of a different stream.
    if publication_epoch != current.epoch {
        return PositionCheck::InsufficientState;
    }
    if current.offset.checked_add(1) == Some(publication_offset) {
        current.offset = publication_offset;
        PositionCheck::Deliver
    } else if publication_offset <= current.offset {
        PositionCheck::Duplicate
    } else {
        PositionCheck::InsufficientState
    }
}

/// Outcome of cache-mode recovery (PROTOCOL §9.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheRecovery {
    /// Whether the client ends up with the current state.
    pub(crate) recovered: bool,
    /// The latest publication to send, unless the client already has it.
    pub(crate) publication: Option<Publication>,
}

/// Cache-mode recovery: the client only needs the newest publication (each one is a full
/// snapshot). `latest` is a history read with limit 1, reverse, no `since`.
///
/// Recovered when the stream has a latest publication (sent unless the client already sits
/// on it), or when the stream is empty and the client is already at the current top.
pub(crate) fn cache_recovery(latest: HistoryResult, since: &StreamPosition) -> CacheRecovery {
    let top = latest.position;
    let at_top = since.offset > 0 && since.offset == top.offset && since.epoch == top.epoch;
    let Some(publication) = latest.publications.into_iter().next() else {
        return CacheRecovery {
            recovered: at_top,
            publication: None,
        };
    };
    // The newest kept publication is normally the top; if it is not (a racing publish
    // between the top read and the publication read in a remote engine), the client
    // cannot be sure it holds the latest state.
    let recovered = publication.offset == top.offset;
    CacheRecovery {
        recovered,
        publication: (recovered && !at_top).then_some(publication),
    }
}
