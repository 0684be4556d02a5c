//! The in-memory map broker against the map broker conformance suite.
//!
//! An integration test, so that the suite and this test see one copy of `gyre`.

use std::sync::Arc;

use gyre::{BoxFuture, MemoryMapBroker};
use gyre_testkit::conformance::map::{MapEngine, MapTestNode};
use gyre_testkit::map_conformance;

/// One broker: a single node, so both ends of a pair are that node.
struct Memory {
    node: Arc<MapTestNode>,
}

async fn memory(_test: &str) -> Memory {
    Memory {
        node: Arc::new(MapTestNode::start(Arc::new(MemoryMapBroker::new())).await),
    }
}

impl MapEngine for Memory {
    fn node(&self) -> BoxFuture<'_, Arc<MapTestNode>> {
        Box::pin(async { self.node.clone() })
    }

    fn pair(&self) -> BoxFuture<'_, (Arc<MapTestNode>, Arc<MapTestNode>)> {
        Box::pin(async { (self.node.clone(), self.node.clone()) })
    }
}

map_conformance! {
    engine: memory, clock: Paused,
    state: run,
    key_order: run,
    stream: run,
    writes: run,
    ephemeral: run,
    expiry: run,
    delivery: run,
    multi_node: skip "the memory map broker serves one node: every change reaches it",
}
