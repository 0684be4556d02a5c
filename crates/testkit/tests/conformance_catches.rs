//! The suite itself: it passes on the memory engine and fails on engines that break what
//! it checks; the recorder reads events in order and waits for late ones.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre::{
    BoxFuture, Broker, BrokerError, BrokerEventHandler, ClientInfo, HistoryOptions, HistoryResult,
    MemoryBroker, Publication, PublishOptions, PublishResult, StreamPosition,
};
use gyre_testkit::conformance::{BrokerEngine, Clock, TestNode, block_on, broker};
use gyre_testkit::{Recorder, Seen};

/// The memory broker with two faults: history reads lose their publications, and joins
/// are never delivered.
struct Faulty(MemoryBroker);

impl Broker for Faulty {
    fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.0.run(handler)
    }
    fn subscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.0.subscribe(channel)
    }
    fn unsubscribe(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.0.unsubscribe(channel)
    }
    fn publish(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions,
    ) -> BoxFuture<'_, Result<PublishResult, BrokerError>> {
        self.0.publish(channel, data, options)
    }
    fn publish_join(&self, _: &str, _: ClientInfo) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async { Ok(()) })
    }
    fn publish_leave(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.0.publish_leave(channel, info)
    }
    fn history(
        &self,
        channel: &str,
        options: HistoryOptions,
    ) -> BoxFuture<'_, Result<HistoryResult, BrokerError>> {
        let read = self.0.history(channel, options);
        Box::pin(async move {
            let mut result = read.await?;
            result.publications.clear();
            Ok(result)
        })
    }
    fn remove_history(&self, channel: &str) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.0.remove_history(channel)
    }
}

struct FaultyEngine(Arc<TestNode>);

impl BrokerEngine for FaultyEngine {
    fn node(&self) -> BoxFuture<'_, Arc<TestNode>> {
        Box::pin(async { self.0.clone() })
    }
}

fn on_faulty(case: impl AsyncFnOnce(&FaultyEngine)) {
    block_on(Clock::Paused, async {
        let node = TestNode::start(Arc::new(Faulty(MemoryBroker::new()))).await;
        case(&FaultyEngine(Arc::new(node))).await;
    });
}

#[test]
#[should_panic]
fn lost_history_fails_the_history_cases() {
    on_faulty(async |engine| broker::history_limits(engine).await);
}

#[test]
#[should_panic(expected = "left: Leave")]
fn lost_joins_fail_the_join_case() {
    on_faulty(async |engine| broker::join_and_leave_are_delivered(engine).await);
}

#[test]
fn faults_outside_a_case_go_unnoticed_by_it() {
    // The same faulty engine passes a case that reads neither history nor joins, so the
    // failures above come from what those cases check.
    on_faulty(async |engine| broker::publications_arrive_in_publish_order(engine).await);
}

#[tokio::test(start_paused = true)]
async fn reader_waits_for_late_events_and_keeps_their_order() {
    let rec = Recorder::new();
    let mut reader = rec.reader();
    assert!(reader.try_next().is_none());
    let late = rec.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        late.handle_join("ch", ClientInfo::new("u", "c"));
        late.handle_publication(
            "ch",
            Publication::new("x"),
            StreamPosition::default(),
            false,
            None,
        );
        late.handle_resubscribed();
    });
    assert_eq!(
        reader.next(Duration::from_secs(5)).await,
        Seen::Join("ch".into(), ClientInfo::new("u", "c"))
    );
    assert_eq!(
        reader.next_publication().await,
        ("ch".into(), Bytes::from("x"))
    );
    assert_eq!(
        reader.next(Duration::from_secs(5)).await,
        Seen::Resubscribed
    );
    assert!(reader.try_next().is_none());
    assert_eq!(rec.datas("ch"), vec![Bytes::from("x")]);
    assert_eq!(rec.datas("other"), Vec::<Bytes>::new());
    assert_eq!(rec.joins().len(), 1);
    assert_eq!(rec.resubscribed(), 1);
}
