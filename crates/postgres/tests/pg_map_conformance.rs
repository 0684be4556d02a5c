//! The PostgreSQL map broker against the map broker conformance suite, on the real
//! PostgreSQL, each case in a schema of its own (dropped at the end). Nodes of a case are
//! brokers on the same schema, as Gyre nodes sharing one database.
//!
//! Three groups hold a case this broker answers differently, as upstream's PostgreSQL
//! broker does; their other cases run one by one below.

mod support;

use std::sync::Arc;

use gyre::BoxFuture;
use gyre_postgres::map::PgMapBroker;
use gyre_testkit::conformance::map::{self, MapEngine, MapTestNode};
use gyre_testkit::conformance::{Clock, block_on};
use gyre_testkit::map_conformance;
use support::TestDb;

struct Pg {
    db: TestDb,
}

async fn pg(_test: &str) -> Pg {
    Pg {
        db: TestDb::new().await,
    }
}

impl MapEngine for Pg {
    fn node(&self) -> BoxFuture<'_, Arc<MapTestNode>> {
        Box::pin(async {
            // BYTEA data: the suite publishes payloads that are not JSON.
            let mut config = self.db.config();
            config.binary_data = true;
            let broker = PgMapBroker::connect(config).await.expect("broker connects");
            let closer = broker.clone();
            Arc::new(
                MapTestNode::start(Arc::new(broker))
                    .await
                    .on_drop(move || closer.close()),
            )
        })
    }
}

map_conformance! {
    engine: pg, clock: Real,
    state: run,
    key_order: run,
    stream: skip "the stream is kept until its daily partition is dropped, not cut at \
                  stream_size / stream_ttl (as upstream's PostgreSQL broker); the group's \
                  other cases run in `stream_cases`",
    writes: run,
    ephemeral: skip "ephemeral changes carry their stream offset (upstream's SQL functions \
                     keep one stream per channel); the keyless broadcast runs below",
    expiry: skip "the ephemeral removal carries its stream offset (see ephemeral); the \
                  recoverable case runs below",
    delivery: run,
    multi_node: run,
}

/// The cases of the skipped groups that hold for this broker.
mod stream_cases {
    use super::*;

    fn run<F>(case: impl FnOnce(Pg) -> F)
    where
        F: std::future::Future<Output = ()>,
    {
        block_on(Clock::Real, async move { case(pg("").await).await });
    }

    #[test]
    fn read_stream_since_forward_and_reverse() {
        run(|e| async move { map::read_stream_since_forward_and_reverse(&e).await });
    }

    #[test]
    fn remove_publishes_removal_at_new_offset() {
        run(|e| async move { map::remove_publishes_removal_at_new_offset(&e).await });
    }

    #[test]
    fn meta_ttl_expiry_starts_new_epoch() {
        run(|e| async move { map::meta_ttl_expiry_starts_new_epoch(&e).await });
    }

    #[test]
    fn keyless_ephemeral_publish_is_a_broadcast() {
        run(|e| async move { map::keyless_ephemeral_publish_is_a_broadcast(&e).await });
    }

    #[test]
    fn expired_key_emits_removal_recoverable() {
        run(|e| async move { map::expired_key_emits_removal_recoverable(&e).await });
    }
}
