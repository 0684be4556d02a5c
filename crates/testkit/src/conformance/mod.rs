//! One conformance suite for every engine: what a [`Broker`] and a [`PresenceManager`]
//! must do, written once and run by each engine's tests against itself.
//!
//! An engine test file implements [`BrokerEngine`] (and [`PresenceEngine`]) for a small
//! factory and expands [`broker_conformance!`](crate::broker_conformance) /
//! [`presence_conformance!`](crate::presence_conformance). Those macros make one `#[test]`
//! per case and make the engine say, group by group, whether it runs the cases or skips
//! them and why. A skipped case stays in the test list as an ignored test carrying the
//! reason, so `cargo test` prints every skip. For engines too costly to start per test
//! (a Redis Cluster), [`broker::run_groups`] runs the cases one after the other inside
//! one test.
//!
//! Waits are real durations of about a second (Redis keeps TTLs in whole seconds); an
//! engine that never waits for I/O runs the suite on a paused clock ([`Clock::Paused`]),
//! where they take no time.

pub mod broker;
pub mod map;
pub mod presence;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gyre::{BoxFuture, Broker, PresenceManager};

use crate::recorder::Recorder;

/// The runtime a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// One thread, time paused: sleeps complete at once when nothing else can run. Only
    /// for engines without real I/O.
    Paused,
    /// Two worker threads and the real clock.
    Real,
}

/// Runs one case to completion on a fresh runtime.
pub fn block_on(clock: Clock, case: impl Future<Output = ()>) {
    let runtime = match clock {
        Clock::Paused => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build(),
        Clock::Real => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .expect("test runtime");
    runtime.block_on(case);
}

/// A running broker and the recorder it delivers to: one "node" of a test.
pub struct TestNode {
    /// The broker, already running with [`TestNode::rec`] as its handler.
    pub broker: Arc<dyn Broker>,
    /// Everything the broker delivered to this node.
    pub rec: Arc<Recorder>,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl std::fmt::Debug for TestNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNode").finish_non_exhaustive()
    }
}

impl TestNode {
    /// Runs `broker` with a new [`Recorder`].
    pub async fn start(broker: Arc<dyn Broker>) -> TestNode {
        let rec = Recorder::new();
        broker.run(rec.clone()).await.expect("broker runs");
        TestNode {
            broker,
            rec,
            on_drop: None,
        }
    }

    /// Calls `f` when the node is dropped (e.g. to stop the engine's background readers).
    pub fn on_drop(mut self, f: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.on_drop = Some(Box::new(f));
        self
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

/// A broker under test. One value serves one case; every node it makes shares the
/// case's channels (for a networked engine: one key or subject prefix no other case
/// uses).
pub trait BrokerEngine: Send + Sync {
    /// A new node.
    fn node(&self) -> BoxFuture<'_, Arc<TestNode>>;

    /// A publishing node and a subscribing node. Engines that deliver to more than one
    /// node make two; a single-node engine returns its one node twice.
    fn pair(&self) -> BoxFuture<'_, (Arc<TestNode>, Arc<TestNode>)> {
        Box::pin(async { (self.node().await, self.node().await) })
    }

    /// Checks that the engine keeps nothing for the case's channels; called after
    /// publishes without history. Engines whose state a test cannot see keep the default,
    /// which checks nothing.
    fn assert_nothing_stored(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Removes what the case left in the engine.
    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A presence manager under test; like [`BrokerEngine`], one value per case.
pub trait PresenceEngine: Send + Sync {
    /// A presence manager with the engine's default entry lifetime.
    fn presence(&self) -> BoxFuture<'_, Arc<dyn PresenceManager>>;

    /// A presence manager whose entries expire `ttl` after their last refresh. Only
    /// called by the `ttl` group, which engines without entry expiry skip.
    fn presence_with_ttl(&self, ttl: Duration) -> BoxFuture<'_, Arc<dyn PresenceManager>> {
        let _ = ttl;
        panic!("this engine has no presence TTL: skip the `ttl` group")
    }

    /// Removes what the case left in the engine.
    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// One generated test of a conformance case: `run` runs it, `skip "why"` lists it as
/// ignored with that reason.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case {
    ((run), $engine:path, $clock:ident, $suite:ident, $case:ident) => {
        #[test]
        fn $case() {
            $crate::conformance::block_on($crate::conformance::Clock::$clock, async {
                let engine = $engine(stringify!($case)).await;
                $crate::conformance::$suite::$case(&engine).await;
            });
        }
    };
    ((skip $why:literal), $engine:path, $clock:ident, $suite:ident, $case:ident) => {
        #[test]
        #[ignore = $why]
        fn $case() {}
    };
}

/// The tests of one group of cases of `suite`, all run or all skipped.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($suite:ident; $mode:tt; $engine:path, $clock:ident; $($case:ident),* $(,)?) => {
        $( $crate::__conformance_case!($mode, $engine, $clock, $suite, $case); )*
    };
}
