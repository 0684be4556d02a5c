//! The verdict of a chaos run, computed after the fact from what each subscriber saw and
//! what each publisher had acknowledged. Pure: no I/O, no clocks.
//!
//! A subscriber's log is a sequence of [`Ev`]s. A subscription that became active without
//! recovering (first subscribe, `recovered: false`, a new epoch) starts a new *segment*:
//! the client was told it may have missed publications, so nothing before it is owed.
//! Inside a segment every publication must arrive exactly once and in order:
//!
//! * with history (`recoverable`), by stream offset: each delivered offset is the previous
//!   one plus one, and when the run ends the segment reaches the last acknowledged offset
//!   of its epoch; a delivered publication that was acknowledged must carry the offset and
//!   epoch its publish reply gave;
//! * without history (NATS), by the publisher's sequence number: between the first and
//!   the last number a segment delivered, and after the last one, only publications whose
//!   publish failed may be missing, and none may come twice. Order is not checked there:
//!   publications sent through different nodes may overtake each other on the broker
//!   (they are counted as `reordered`).
//!
//! Anything missing that the client was not told about is a *silent gap*.

use std::collections::{HashMap, HashSet};

/// One thing a subscriber saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    /// The subscription became active. `recovered` only when the client asked to recover
    /// and the server said nothing was missed; `epoch` is an index into the run's epochs,
    /// `offset` the stream top at subscribe time.
    Sub {
        /// Continuity with what came before is guaranteed by the server.
        recovered: bool,
        /// Stream epoch (interned).
        epoch: u32,
        /// Stream top offset in the subscribe reply.
        offset: u64,
    },
    /// A publication: the publisher's sequence number and the stream offset (0 without
    /// history).
    Pub {
        /// Publisher sequence number in the channel.
        seq: u64,
        /// Stream offset.
        offset: u64,
    },
}

/// What the publisher of one channel had acknowledged.
#[derive(Debug, Default, Clone)]
pub struct ChannelAcks {
    /// Sequence number → (epoch, offset) from the publish reply.
    pub acked: HashMap<u64, (u32, u64)>,
}

impl ChannelAcks {
    /// Records one acknowledged publication.
    pub fn ack(&mut self, seq: u64, epoch: u32, offset: u64) {
        self.acked.insert(seq, (epoch, offset));
    }
}

/// Findings for one subscriber (or summed over many).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Publications delivered.
    pub delivered: u64,
    /// Publications missing without the client being told.
    pub silent_gaps: u64,
    /// Publications delivered again, or out of order.
    pub duplicates: u64,
    /// Delivered publications whose offset or epoch differ from their publish reply.
    pub mismatched: u64,
    /// Publications that arrived after a later one (without history only: ordering
    /// across publishing nodes is not promised there; with history it is a duplicate or
    /// a gap).
    pub reordered: u64,
    /// Segments started after the first one (the client was told it may have missed
    /// publications).
    pub told: u64,
}

impl Verdict {
    /// Adds another subscriber's findings.
    pub fn add(&mut self, o: &Verdict) {
        self.delivered += o.delivered;
        self.silent_gaps += o.silent_gaps;
        self.duplicates += o.duplicates;
        self.mismatched += o.mismatched;
        self.told += o.told;
        self.reordered += o.reordered;
    }

    /// No loss, duplicate or corruption.
    pub fn clean(&self) -> bool {
        self.silent_gaps == 0 && self.duplicates == 0 && self.mismatched == 0
    }
}

/// Checks one subscriber's log against its channel's acknowledgements.
pub fn check(events: &[Ev], acks: &ChannelAcks, recoverable: bool) -> Verdict {
    if recoverable {
        check_stream(events, acks)
    } else {
        check_sequence(events, acks)
    }
}

fn check_stream(events: &[Ev], acks: &ChannelAcks) -> Verdict {
    let mut v = Verdict::default();
    // (epoch, last offset) of the current segment.
    let mut seg: Option<(u32, u64)> = None;
    for ev in events {
        match *ev {
            Ev::Sub {
                recovered,
                epoch,
                offset,
            } => match seg {
                Some((e, _)) if recovered && e == epoch => {}
                Some(_) if recovered => {
                    // "Recovered" into another epoch: the server claims continuity it
                    // cannot have.
                    v.mismatched += 1;
                    seg = Some((epoch, offset));
                }
                Some(_) => {
                    v.told += 1;
                    seg = Some((epoch, offset));
                }
                None => seg = Some((epoch, offset)),
            },
            Ev::Pub { seq, offset } => {
                v.delivered += 1;
                let Some((epoch, last)) = seg.as_mut() else {
                    // Delivered before any subscribe reply: cannot be placed.
                    v.mismatched += 1;
                    continue;
                };
                if let Some(&(e, o)) = acks.acked.get(&seq)
                    && (e != *epoch || o != offset)
                {
                    v.mismatched += 1;
                }
                if offset == *last + 1 {
                    *last = offset;
                } else if offset <= *last {
                    v.duplicates += 1;
                } else {
                    v.silent_gaps += offset - *last - 1;
                    *last = offset;
                }
            }
        }
    }
    if let Some((epoch, last)) = seg {
        v.silent_gaps += acks
            .acked
            .values()
            .filter(|&&(e, o)| e == epoch && o > last)
            .count() as u64;
    }
    v
}

fn check_sequence(events: &[Ev], acks: &ChannelAcks) -> Verdict {
    let mut v = Verdict::default();
    // The sequence numbers delivered in the current segment (None: not subscribed yet).
    let mut seg: Option<HashSet<u64>> = None;
    let mut max = 0u64;
    let close = |seg: &HashSet<u64>, v: &mut Verdict, last: bool| {
        let (Some(&lo), Some(&hi)) = (seg.iter().min(), seg.iter().max()) else {
            return;
        };
        // Inside a segment nothing acknowledged may be missing; after the last segment's
        // last delivery, nothing acknowledged may come later.
        v.silent_gaps += acks
            .acked
            .keys()
            .filter(|&&s| s > lo && !seg.contains(&s) && (s < hi || last))
            .count() as u64;
    };
    for ev in events {
        match *ev {
            Ev::Sub { .. } => {
                if let Some(old) = seg.take() {
                    v.told += 1;
                    close(&old, &mut v, false);
                }
                seg = Some(HashSet::new());
                max = 0;
            }
            Ev::Pub { seq, .. } => {
                v.delivered += 1;
                let Some(set) = seg.as_mut() else {
                    v.mismatched += 1;
                    continue;
                };
                if !set.insert(seq) {
                    v.duplicates += 1;
                } else if seq < max {
                    // Publications sent through different nodes of a broker without
                    // ordering across publishers (NATS) may overtake each other.
                    v.reordered += 1;
                }
                max = max.max(seq);
            }
        }
    }
    if let Some(last) = seg {
        close(&last, &mut v, true);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks(n: u64, epoch: u32) -> ChannelAcks {
        let mut a = ChannelAcks::default();
        for s in 1..=n {
            a.ack(s, epoch, s);
        }
        a
    }

    fn sub(recovered: bool, epoch: u32, offset: u64) -> Ev {
        Ev::Sub {
            recovered,
            epoch,
            offset,
        }
    }

    fn p(seq: u64) -> Ev {
        Ev::Pub { seq, offset: seq }
    }

    #[test]
    fn complete_stream_is_clean() {
        let ev = [sub(false, 0, 0), p(1), p(2), p(3)];
        let v = check(&ev, &acks(3, 0), true);
        assert!(v.clean(), "{v:?}");
        assert_eq!(v.delivered, 3);
    }

    #[test]
    fn recovered_reconnect_must_continue_exactly() {
        let ev = [sub(false, 0, 0), p(1), sub(true, 0, 3), p(2), p(3)];
        assert!(check(&ev, &acks(3, 0), true).clean());
        // Recovery that skipped offset 2 is a silent gap.
        let ev = [sub(false, 0, 0), p(1), sub(true, 0, 3), p(3)];
        assert_eq!(check(&ev, &acks(3, 0), true).silent_gaps, 1);
        // ...and one that replays offset 1 is a duplicate.
        let ev = [sub(false, 0, 0), p(1), sub(true, 0, 3), p(1), p(2), p(3)];
        assert_eq!(check(&ev, &acks(3, 0), true).duplicates, 1);
    }

    #[test]
    fn told_gap_is_not_silent() {
        let ev = [sub(false, 0, 0), p(1), sub(false, 0, 2), p(3)];
        let v = check(&ev, &acks(3, 0), true);
        assert!(v.clean(), "{v:?}");
        assert_eq!(v.told, 1);
    }

    #[test]
    fn missing_tail_is_silent() {
        let ev = [sub(false, 0, 0), p(1)];
        assert_eq!(check(&ev, &acks(3, 0), true).silent_gaps, 2);
    }

    #[test]
    fn new_epoch_without_telling_is_caught() {
        // The stream restarted (epoch 1, offsets from 1) while the client stayed on epoch 0.
        let mut a = acks(2, 0);
        a.ack(3, 1, 1);
        let ev = [sub(false, 0, 0), p(1), p(2), Ev::Pub { seq: 3, offset: 1 }];
        let v = check(&ev, &a, true);
        assert!(!v.clean());
        assert_eq!(v.mismatched, 1);
        // Recovery claimed across epochs is caught too.
        let ev = [sub(false, 0, 0), p(1), sub(true, 1, 1)];
        assert!(!check(&ev, &a, true).clean());
    }

    #[test]
    fn wrong_offset_for_acknowledged_publication() {
        let ev = [sub(false, 0, 0), Ev::Pub { seq: 2, offset: 1 }];
        let mut a = ChannelAcks::default();
        a.ack(2, 0, 1);
        assert!(check(&ev, &a, true).clean());
        a.ack(2, 0, 2);
        assert_eq!(check(&ev, &a, true).mismatched, 1);
    }

    #[test]
    fn sequence_mode_allows_only_failed_publishes_in_gaps() {
        let mut a = ChannelAcks::default();
        for s in [1, 2, 4] {
            a.ack(s, 0, 0);
        }
        // 3 failed to publish: its absence is fine.
        let ev = [sub(false, 0, 0), p(1), p(2), p(4)];
        assert!(check(&ev, &a, false).clean());
        // 2 was acknowledged: its absence is silent.
        let ev = [sub(false, 0, 0), p(1), p(4)];
        assert_eq!(check(&ev, &a, false).silent_gaps, 1);
        // A reconnect tells; a repeat is a duplicate; the tail is owed.
        let ev = [sub(false, 0, 0), p(1), sub(false, 0, 0), p(4)];
        assert!(check(&ev, &a, false).clean());
        let ev = [sub(false, 0, 0), p(1), p(1), p(2)];
        let v = check(&ev, &a, false);
        assert_eq!((v.duplicates, v.silent_gaps), (1, 1));
        // Overtaking is no loss.
        let ev = [sub(false, 0, 0), p(2), p(1), p(4)];
        let v = check(&ev, &a, false);
        assert!(v.clean(), "{v:?}");
        assert_eq!(v.reordered, 1);
    }
}
