//! Writers that offer their core to other threads now and then.
//!
//! Connection writers are always busy under load, and the scheduler lets a busy thread
//! finish its slice (1.5 ms or more on two cores) before a thread that just woke may run.
//! When the server API shares a core with the writers, a publication then waits that long
//! before it is even queued for its subscribers, and so do all of its deliveries (measured
//! with 1,000 subscribers at 2,080 publications/s on one core: publish-call p99 3.5 ms).
//! Offering the core every few dozen frames bounds that wait to a few hundred
//! microseconds (publish-call p99 0.9–1.1 ms); with nobody else runnable the offer is one
//! cheap syscall.
//!
//! Writers that drain big batches are behind already: a publication let in sooner would
//! only add to their backlog and take their CPU (measured: fan-out throughput −5% and a
//! p99 ten times longer when they offered too), so they keep the core.

use std::cell::Cell;

/// Frames a thread writes while caught up before it offers the core.
pub(crate) const FRAMES_PER_TURN: u32 = 32;

/// Frames of more messages than this mean the writers are behind.
pub(crate) const CAUGHT_UP_BATCH: usize = 32;

thread_local! {
    static WRITTEN: Cell<u32> = const { Cell::new(0) };
    static OFFERED: Cell<u64> = const { Cell::new(0) };
}

/// Counts a frame of `messages` written on this thread and, every [`FRAMES_PER_TURN`]
/// frames written while caught up, lets another runnable thread of the core run first.
/// Returns whether it offered the core.
pub(crate) fn give_way(messages: usize) -> bool {
    if messages > CAUGHT_UP_BATCH {
        return false;
    }
    let turn = WRITTEN.with(|n| {
        let next = n.get() + 1;
        n.set(if next >= FRAMES_PER_TURN { 0 } else { next });
        next >= FRAMES_PER_TURN
    });
    if turn {
        OFFERED.with(|n| n.set(n.get() + 1));
        std::thread::yield_now();
    }
    turn
}

/// How many times this thread offered its core.
#[cfg(test)]
pub(crate) fn offered_on_this_thread() -> u64 {
    OFFERED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_turn_of_small_frames_offers_the_core_and_big_batches_never_do() {
        std::thread::spawn(|| {
            for _ in 0..3 {
                for _ in 1..FRAMES_PER_TURN {
                    assert!(!give_way(1));
                    // A writer that is behind neither offers nor counts toward a turn.
                    assert!(!give_way(CAUGHT_UP_BATCH + 1));
                }
                assert!(give_way(CAUGHT_UP_BATCH));
            }
            assert_eq!(offered_on_this_thread(), 3);
        })
        .join()
        .unwrap();
    }
}
