//! Stream recovery: pure logic deciding what a resubscribing client missed.
//!
//! The session drives the I/O (buffering live publications, reading history); these
//! functions only decide, so they are tested without sockets or timers (PROTOCOL §7.3, §9).

use crate::broker::{HistoryResult, Publication, StreamPosition};

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

/// Cache-mode recovery (upstream's `isCacheRecovered`): the client only needs the
/// channel's latest state. `newest` is the newest publication of the stream, `matching`
/// the newest one the subscriber's tags filter lets through (the same one without a
/// filter), `top` the stream position read with them.
///
/// Returns whether the client is recovered and the publication to send it. With nothing
/// to send, the client counts as recovered only if it already stood at the top; else it is
/// recovered (whatever its epoch: the latest publication is the whole state) and gets
/// `matching` unless it already holds the top.
pub(crate) fn cache_recovery<'a>(
    newest: Option<&Publication>,
    matching: Option<&'a Publication>,
    top: &StreamPosition,
    since: &StreamPosition,
) -> (bool, Option<&'a Publication>) {
    let same_state = since.offset > 0 && since.offset == top.offset && since.epoch == top.epoch;
    let (Some(newest), Some(matching)) = (newest, matching) else {
        return (same_state, None);
    };
    let recovered = newest.offset == top.offset;
    if recovered && !same_state {
        (true, Some(matching))
    } else {
        (recovered, None)
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::broker::Publication;

    /// `client.recovery_max_publication_limit`'s default, as the session reads history.
    const DEFAULT_RECOVERY_MAX_PUBLICATION_LIMIT: i32 = 300;
    use crate::broker::{
        Broker, BrokerError, BrokerEventHandler, ClientInfo, HistoryOptions, MemoryBroker,
        PublishOptions,
    };

    struct Discard;

    impl BrokerEventHandler for Discard {
        fn handle_publication(
            &self,
            _: &str,
            _: Publication,
            _: StreamPosition,
            _: bool,
            _: Option<Publication>,
        ) {
        }
        fn handle_join(&self, _: &str, _: ClientInfo) {}
        fn handle_leave(&self, _: &str, _: ClientInfo) {}
    }

    fn pub_at(offset: u64) -> Publication {
        let mut p = Publication::new(Bytes::from(offset.to_string()));
        p.offset = offset;
        p
    }

    fn range(from: u64, to: u64) -> Vec<Publication> {
        (from..=to).map(pub_at).collect()
    }

    fn offsets(pubs: &[Publication]) -> Vec<u64> {
        pubs.iter().map(|p| p.offset).collect()
    }

    #[derive(Debug, Clone, Copy)]
    enum ClientEpoch {
        Same,
        Empty,
        Wrong,
    }

    /// Publishes `k` publications into a stream of size `size`, then recovers as a client
    /// at offset `p` would: history since p with the recovery limit, then `is_recovered`.
    /// Returns the recovered publications, or None when not recovered.
    fn recover_from_broker(k: u64, size: usize, p: u64, epoch: ClientEpoch) -> Option<Vec<u64>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let broker = MemoryBroker::new();
            broker.run(Arc::new(Discard)).await.unwrap();
            let opts = PublishOptions::new().history(size, Duration::from_secs(3600));
            for _ in 0..k {
                broker
                    .publish("ch", Bytes::new(), opts.clone())
                    .await
                    .unwrap();
            }
            let real = broker
                .history("ch", HistoryOptions::new(0))
                .await
                .unwrap()
                .position
                .epoch;
            let since = StreamPosition::new(
                p,
                match epoch {
                    ClientEpoch::Same => real,
                    ClientEpoch::Empty => String::new(),
                    ClientEpoch::Wrong => format!("x{real}"),
                },
            );
            let read =
                HistoryOptions::new(DEFAULT_RECOVERY_MAX_PUBLICATION_LIMIT).since(since.clone());
            match broker.history("ch", read).await {
                Ok(history) => {
                    is_recovered(&history, &since).then(|| offsets(&history.publications))
                }
                Err(BrokerError::UnrecoverablePosition) => None,
                Err(e) => panic!("unexpected history error: {e}"),
            }
        })
    }

    fn stream_case() -> impl Strategy<Value = (u64, usize, u64, ClientEpoch)> {
        let epoch = prop_oneof![
            4 => Just(ClientEpoch::Same),
            1 => Just(ClientEpoch::Empty),
            1 => Just(ClientEpoch::Wrong),
        ];
        // Small streams cover trimming; large ones cover the 300-publication cap.
        let small = (0u64..40, 1usize..30);
        let large = (280u64..340, 250usize..360);
        (prop_oneof![3 => small, 1 => large], epoch)
            .prop_flat_map(|((k, size), epoch)| (Just(k), Just(size), 0..=k, Just(epoch)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn recovery_matches_what_the_stream_kept((k, size, p, epoch) in stream_case()) {
            let got = recover_from_broker(k, size, p, epoch);
            let oldest_kept = k.saturating_sub(size as u64) + 1;
            let missed = k - p;
            let all_kept = missed == 0 || p + 1 >= oldest_kept;
            let expect_recovered = !matches!(epoch, ClientEpoch::Wrong)
                && all_kept
                && missed <= DEFAULT_RECOVERY_MAX_PUBLICATION_LIMIT as u64;
            if expect_recovered {
                prop_assert_eq!(got, Some((p + 1..=k).collect::<Vec<_>>()));
            } else {
                prop_assert_eq!(got, None);
            }
        }

        #[test]
        fn check_position_follows_the_stream(
            start in 0u64..1000, offsets_seen in proptest::collection::vec(0u64..1100, 0..40),
            same_epoch in proptest::collection::vec(proptest::bool::weighted(0.9), 40)
        ) {
            let mut pos = StreamPosition::new(start, "e");
            for (i, &o) in offsets_seen.iter().enumerate() {
                let epoch = if same_epoch[i] { "e" } else { "f" };
                let before = pos.clone();
                let verdict = check_position(&mut pos, o, epoch);
                let expected = if epoch != "e" {
                    PositionCheck::InsufficientState
                } else if o == before.offset + 1 {
                    PositionCheck::Deliver
                } else if o <= before.offset {
                    PositionCheck::Duplicate
                } else {
                    PositionCheck::InsufficientState
                };
                prop_assert_eq!(verdict, expected);
                // Only a delivery moves the position, and only by one.
                let moved = if verdict == PositionCheck::Deliver { o } else { before.offset };
                prop_assert_eq!(pos.offset, moved);
                prop_assert_eq!(&pos.epoch, "e");
            }
        }
    }

    fn history(top: u64, epoch: &str, pubs: Vec<Publication>) -> HistoryResult {
        HistoryResult {
            position: StreamPosition::new(top, epoch),
            publications: pubs,
        }
    }

    #[test]
    fn is_recovered_cases() {
        let at = |o: u64, e: &str| StreamPosition::new(o, e);
        assert!(is_recovered(&history(5, "e", vec![]), &at(5, "e")));
        assert!(is_recovered(&history(5, "e", vec![]), &at(5, "")));
        assert!(!is_recovered(&history(5, "e", vec![]), &at(5, "f")));
        assert!(!is_recovered(&history(5, "e", vec![]), &at(3, "e")));
        assert!(is_recovered(&history(5, "e", range(4, 5)), &at(3, "e")));
        // Trimmed head, truncated tail, hole in the middle.
        assert!(!is_recovered(&history(5, "e", range(5, 5)), &at(3, "e")));
        assert!(!is_recovered(&history(5, "e", range(4, 4)), &at(3, "e")));
        let holed = vec![pub_at(2), pub_at(3), pub_at(5)];
        assert!(!is_recovered(&history(5, "e", holed), &at(1, "e")));
        // A client ahead of the stream (lost stream with a reused epoch) is not recovered.
        assert!(!is_recovered(&history(2, "e", vec![]), &at(4, "e")));
        assert!(!is_recovered(
            &history(u64::MAX, "e", range(1, 1)),
            &at(u64::MAX, "e")
        ));
    }

    #[test]
    fn cache_recovery_cases() {
        let at = |o: u64, e: &str| StreamPosition::new(o, e);
        let top = at(7, "e");
        let p7 = pub_at(7);
        let p5 = pub_at(5);
        // A fresh client (no position) or one behind, even from another epoch: the latest.
        for since in [at(0, ""), at(3, "e"), at(3, "old"), at(9, "e")] {
            let (ok, got) = cache_recovery(Some(&p7), Some(&p7), &top, &since);
            assert!(ok, "{since:?}");
            assert_eq!(got.map(|p| p.offset), Some(7), "{since:?}");
        }
        // Already at the top: recovered, nothing to send.
        assert_eq!(
            cache_recovery(Some(&p7), Some(&p7), &top, &at(7, "e")),
            (true, None)
        );
        // The filter lets an older one through: that one is the state to send.
        let (ok, got) = cache_recovery(Some(&p7), Some(&p5), &top, &at(0, ""));
        assert!(ok);
        assert_eq!(got.map(|p| p.offset), Some(5));
        // Empty channel, or everything filtered out: recovered only when at the top.
        assert_eq!(cache_recovery(None, None, &top, &at(0, "")), (false, None));
        assert_eq!(
            cache_recovery(Some(&p7), None, &top, &at(3, "e")),
            (false, None)
        );
        assert_eq!(cache_recovery(None, None, &top, &at(7, "e")), (true, None));
        // A publication newer than the position read (a race): not recovered.
        let p8 = pub_at(8);
        assert_eq!(
            cache_recovery(Some(&p8), Some(&p8), &top, &at(0, "")),
            (false, None)
        );
    }

    #[test]
    fn check_position_at_u64_max_does_not_overflow() {
        let mut pos = StreamPosition::new(u64::MAX, "e");
        assert_eq!(
            check_position(&mut pos, u64::MAX, "e"),
            PositionCheck::Duplicate
        );
        assert_eq!(check_position(&mut pos, 0, "e"), PositionCheck::Duplicate);
    }
}
