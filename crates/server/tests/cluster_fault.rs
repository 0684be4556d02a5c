//! Redis dies under load and comes back: two `gyre` nodes on a dedicated `redis-server`,
//! clients on both nodes in a recoverable channel (modelling the SDK: resubscribe with
//! recovery when told 2500, reconnect when disconnected), a publisher on the server
//! API at a steady pace, and `kill -9` of Redis mid-stream, then a restart on the same
//! port (empty: no persistence, so the stream's epoch changes).
//!
//! Proven: API publishes during the outage fail (HTTP 200, error 100), never succeed
//! silently; once Redis is back both nodes deliver again without a restart; every client
//! holds every acknowledged publication in offset order without a gap, except those it
//! was told it could not get (a subscribe result with `recovered: false`, which a
//! resubscribe with the old epoch must get).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gyre_testkit::redis_server::RedisServer;
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::cluster::{
    api_at, eventually, node_config, start_nodes, unique_prefix, wait_for_cluster,
};
use support::{Reply, WsClient, policy};

const CHANNEL: &str = "rec:stream";

/// What a modelled client saw, in order.
#[derive(Debug, Clone)]
enum Event {
    /// A subscribe result: the position asked to recover from, whether recovered, the
    /// position the client holds after it (the stream top) and the recovered
    /// publications as (offset, n).
    Subscribed {
        asked: Option<(String, u64)>,
        recovered: bool,
        epoch: String,
        offset: u64,
        publications: Vec<(u64, u64)>,
    },
    /// A subscribe error (code).
    SubscribeError(u32),
    /// A live publication: offset and n.
    Publication(u64, u64),
    /// An `unsubscribe` push (code).
    Unsubscribed(u64),
    /// The connection closed (close code).
    Closed(u16),
}

/// A modelled client's log and current position.
#[derive(Default)]
struct ClientState {
    events: Vec<Event>,
    position: Option<(String, u64)>,
}

type Shared = Arc<Mutex<ClientState>>;

fn offset_of(v: &Value) -> u64 {
    v["offset"].as_u64().unwrap_or(0)
}

fn n_of(v: &Value) -> u64 {
    v["data"]["n"]
        .as_u64()
        .unwrap_or_else(|| panic!("no data.n in {v}"))
}

/// Subscribes (recovering from the held position, if any) until a result or a close;
/// `false` when the connection closed.
async fn subscribe(ws: &mut WsClient, state: &Shared, stop: &AtomicBool) -> bool {
    loop {
        let asked = state.lock().position.clone();
        let mut request = json!({"channel": CHANNEL, "recoverable": true});
        if let Some((epoch, offset)) = &asked {
            request["recover"] = json!(true);
            request["epoch"] = json!(epoch);
            request["offset"] = json!(offset);
        }
        match ws.call("subscribe", request).await {
            Reply::Ok(r) => {
                let publications: Vec<(u64, u64)> = r["publications"]
                    .as_array()
                    .map(|a| a.iter().map(|p| (offset_of(p), n_of(p))).collect())
                    .unwrap_or_default();
                let epoch = r["epoch"].as_str().expect("subscribe epoch").to_owned();
                // gyre answers the asked offset when recovered, Centrifugo the top: the
                // client is at the top once it applied the publications.
                let top = publications
                    .last()
                    .map_or(offset_of(&r), |p| p.0.max(offset_of(&r)));
                let mut s = state.lock();
                s.events.push(Event::Subscribed {
                    asked,
                    recovered: r["recovered"] == json!(true),
                    epoch: epoch.clone(),
                    offset: top,
                    publications,
                });
                s.position = Some((epoch, top));
                return true;
            }
            Reply::Error(code, _) => {
                state.lock().events.push(Event::SubscribeError(code));
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                // A temporary error (the engine is away): try again, as the SDK does.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Reply::Closed(code, _) => {
                state.lock().events.push(Event::Closed(code));
                return false;
            }
        }
    }
}

/// Models an SDK client of `url` until `stop`.
async fn run_client(url: String, user: String, state: Shared, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let token = policy::connect_token(&user, json!({}));
        let (mut ws, reply) = WsClient::connect(&url, json!({"token": token})).await;
        match reply {
            Reply::Ok(_) => {}
            Reply::Error(code, _) => panic!("connect to {url} failed: {code}"),
            Reply::Closed(code, _) => {
                state.lock().events.push(Event::Closed(code));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        'subscribed: while subscribe(&mut ws, &state, &stop).await {
            loop {
                match ws.push_within(Duration::from_millis(100)).await {
                    Ok(None) if stop.load(Ordering::SeqCst) => return,
                    Ok(None) => {}
                    Ok(Some(push)) if push["channel"] != CHANNEL => {}
                    Ok(Some(push)) => {
                        if let Some(p) = push.get("pub") {
                            let offset = offset_of(p);
                            let mut s = state.lock();
                            s.events.push(Event::Publication(offset, n_of(p)));
                            if let Some(position) = &mut s.position {
                                position.1 = offset;
                            }
                        } else if let Some(u) = push.get("unsubscribe") {
                            let code = u["code"].as_u64().unwrap_or(0);
                            state.lock().events.push(Event::Unsubscribed(code));
                            // Told the stream is lost (2500): resubscribe with recovery.
                            continue 'subscribed;
                        }
                    }
                    Err((code, _)) => {
                        state.lock().events.push(Event::Closed(code));
                        break 'subscribed;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One API publish: its n, when it started and ended, and the position or the error.
#[derive(Debug, Clone)]
struct Published {
    n: u64,
    started: Instant,
    finished: Instant,
    outcome: Result<(String, u64), (u16, Value)>,
}

/// Publishes `{"n": 1, 2, ...}` every 25 ms, alternating between `nodes`, until `stop`.
async fn run_publisher(nodes: Vec<String>, log: Arc<Mutex<Vec<Published>>>, stop: Arc<AtomicBool>) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let node = &nodes[n as usize % nodes.len()];
        let started = Instant::now();
        let (status, body) = api_at(
            node,
            "publish",
            &json!({"channel": CHANNEL, "data": {"n": n}}),
        )
        .await;
        let outcome = match body.get("result") {
            Some(r) if status == 200 && body.get("error").is_none() => Ok((
                r["epoch"].as_str().expect("publish epoch").to_owned(),
                offset_of(r),
            )),
            _ => Err((status, body)),
        };
        log.lock().push(Published {
            n,
            started,
            finished: Instant::now(),
            outcome,
        });
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn acked_since(log: &Mutex<Vec<Published>>, since: Instant) -> usize {
    log.lock()
        .iter()
        .filter(|p| p.started >= since && p.outcome.is_ok())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_stream() {
    let mut redis = RedisServer::start(false);
    let prefix = unique_prefix("fault");
    let nodes = start_nodes(
        &node_config(json!({"engine": {"type": "redis", "redis": {
            "address": [redis.url()],
            "prefix": prefix,
            "connect_timeout": "500ms",
            "io_timeout": "1s"
        }}})),
        2,
    );
    wait_for_cluster(&nodes).await;

    // Two clients on each node.
    let stop_clients = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..4 {
        let state = Shared::default();
        let url = nodes[i % 2].ws_url();
        let task = tokio::spawn(run_client(
            url,
            format!("user{i}"),
            state.clone(),
            stop_clients.clone(),
        ));
        clients.push((state, task));
    }
    let all_subscribed = eventually(Duration::from_secs(5), || async {
        clients
            .iter()
            .all(|(s, _)| s.lock().position.is_some())
            .then_some(())
    })
    .await;
    assert!(all_subscribed.is_some(), "clients did not subscribe");

    // Publish steadily; kill Redis mid-stream.
    let log = Arc::new(Mutex::new(Vec::<Published>::new()));
    let stop_publisher = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(run_publisher(
        nodes.iter().map(|n| n.http_url()).collect(),
        log.clone(),
        stop_publisher.clone(),
    ));
    let start = Instant::now();
    let warm = eventually(Duration::from_secs(10), || async {
        (acked_since(&log, start) >= 20).then_some(())
    })
    .await;
    assert!(warm.is_some(), "publishing did not start: {:?}", log.lock());
    redis.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restarting = Instant::now();
    // Waits for PING synchronously: keep the runtime's other worker for the clients.
    tokio::task::block_in_place(|| redis.restart());
    let back = Instant::now();

    // Both nodes publish again (the publisher alternates) without being restarted.
    let resumed = eventually(Duration::from_secs(15), || async {
        (acked_since(&log, back) >= 40).then_some(())
    })
    .await;
    stop_publisher.store(true, Ordering::SeqCst);
    publisher.await.expect("publisher task");
    let published = log.lock().clone();
    assert!(
        resumed.is_some(),
        "publishing did not resume after the restart: {:?}",
        &published[published.len().saturating_sub(10)..]
    );

    // Every client reaches the last acknowledged publication.
    let acks: Vec<(u64, String, u64)> = published
        .iter()
        .filter_map(|p| p.outcome.as_ref().ok().map(|(e, o)| (p.n, e.clone(), *o)))
        .collect();
    let last = acks.last().expect("acks").clone();
    let caught_up = eventually(Duration::from_secs(10), || async {
        clients
            .iter()
            .all(|(s, _)| s.lock().position == Some((last.1.clone(), last.2)))
            .then_some(())
    })
    .await;
    stop_clients.store(true, Ordering::SeqCst);
    for (_, task) in &mut clients {
        task.await.expect("client task");
    }
    let logs: Vec<Vec<Event>> = clients
        .iter()
        .map(|(s, _)| s.lock().events.clone())
        .collect();
    assert!(
        caught_up.is_some(),
        "not every client reached {last:?}: {:?}",
        clients
            .iter()
            .zip(&logs)
            .map(|((s, _), events)| (
                s.lock().position.clone(),
                events.iter().rev().take(8).collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>()
    );

    // The publisher: errors are HTTP 200 with code 100; during the outage there are only
    // errors.
    let mut failed = HashSet::new();
    for p in &published {
        if let Err((status, body)) = &p.outcome {
            assert_eq!(*status, 200, "{body}");
            assert_eq!(body["error"]["code"], json!(100), "{body}");
            failed.insert(p.n);
        }
    }
    let outage: Vec<&Published> = published
        .iter()
        .filter(|p| p.started >= killed && p.finished <= restarting)
        .collect();
    assert!(!outage.is_empty(), "no publish during the outage");
    for p in &outage {
        assert!(p.outcome.is_err(), "published while Redis was dead: {p:?}");
    }

    // Two streams: before the kill and after the restart (a new epoch).
    let mut epochs: Vec<String> = Vec::new();
    for (_, epoch, _) in &acks {
        if !epochs.contains(epoch) {
            epochs.push(epoch.clone());
        }
    }
    assert_eq!(epochs.len(), 2, "epochs {epochs:?}");
    let (old, new) = (&epochs[0], &epochs[1]);
    for p in &published {
        if let Ok((epoch, _)) = &p.outcome {
            let want = if p.finished <= killed {
                old
            } else if p.started >= back {
                new
            } else {
                epoch
            };
            assert_eq!(epoch, want, "{p:?}");
        }
    }
    // Offsets grow with n in each epoch.
    for epoch in &epochs {
        let offsets: Vec<u64> = acks.iter().filter(|a| &a.1 == epoch).map(|a| a.2).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    }
    let rank = |epoch: &str| {
        epochs
            .iter()
            .position(|e| e == epoch)
            .unwrap_or_else(|| panic!("epoch {epoch} of no acknowledged publication"))
    };
    let acked: HashMap<(String, u64), u64> =
        acks.iter().map(|(n, e, o)| ((e.clone(), *o), *n)).collect();

    // Each client: in order without a gap, or told.
    for (i, events) in logs.iter().enumerate() {
        let ctx = || format!("client {i}: {events:?}");
        let mut position: Option<(String, u64)> = None;
        // Everything at or before this position the client was told it could not get.
        let mut told: Option<(usize, u64)> = None;
        let mut received: HashSet<(String, u64)> = HashSet::new();
        let mut told_new_epoch = false;
        let mut live_new = 0;
        let receive = |epoch: &str, offset: u64, n: u64, received: &mut HashSet<(String, u64)>| {
            match acked.get(&(epoch.to_owned(), offset)) {
                Some(&acked_n) => assert_eq!(acked_n, n, "wrong data at {epoch}:{offset}"),
                // Written before Redis died, its API answer lost.
                None => assert!(
                    failed.contains(&n),
                    "n={n} at {epoch}:{offset} never published"
                ),
            }
            assert!(
                received.insert((epoch.to_owned(), offset)),
                "{epoch}:{offset} twice"
            );
        };
        for event in events {
            match event {
                Event::Subscribed {
                    asked,
                    recovered,
                    epoch,
                    offset,
                    publications,
                } => {
                    assert_eq!(asked, &position, "{}", ctx());
                    match asked {
                        Some((asked_epoch, asked_offset)) if *recovered => {
                            assert_eq!(asked_epoch, epoch, "{}", ctx());
                            let offsets: Vec<u64> = publications.iter().map(|p| p.0).collect();
                            let want: Vec<u64> = (asked_offset + 1..=*offset).collect();
                            assert_eq!(offsets, want, "recovered with a gap: {}", ctx());
                            for &(o, n) in publications {
                                receive(epoch, o, n, &mut received);
                            }
                        }
                        _ => {
                            if let Some((asked_epoch, _)) = asked {
                                told_new_epoch |= asked_epoch == old && epoch == new;
                            }
                            assert!(publications.is_empty(), "{}", ctx());
                            told = Some((rank(epoch), *offset));
                        }
                    }
                    if let Some((asked_epoch, _)) = asked {
                        assert!(
                            asked_epoch == epoch || !recovered,
                            "recovered across epochs: {}",
                            ctx()
                        );
                    }
                    position = Some((epoch.clone(), *offset));
                }
                Event::Publication(offset, n) => {
                    let (epoch, at) = position.clone().expect("a publication before subscribing");
                    assert_eq!(*offset, at + 1, "silent gap or disorder: {}", ctx());
                    receive(&epoch, *offset, *n, &mut received);
                    if &epoch == new {
                        live_new += 1;
                    }
                    position = Some((epoch, *offset));
                }
                // Told to resubscribe: the stream lost its position.
                Event::Unsubscribed(code) => assert_eq!(*code, 2500, "{}", ctx()),
                // The engine is away: a temporary error, the SDK retries.
                Event::SubscribeError(code) => assert_eq!(*code, 100, "{}", ctx()),
                // A reconnecting disconnect (3000..3499), e.g. 3010 insufficient state.
                Event::Closed(code) => assert!((3000..3500).contains(code), "{}", ctx()),
            }
        }
        let told = told.expect("a first subscribe");
        for (n, epoch, offset) in &acks {
            if (rank(epoch), *offset) > told {
                assert!(
                    received.contains(&(epoch.clone(), *offset)),
                    "acknowledged n={n} ({epoch}:{offset}) missing: {}",
                    ctx()
                );
            }
        }
        assert!(
            told_new_epoch,
            "never resubscribed from the old epoch with recovered:false: {}",
            ctx()
        );
        assert!(
            live_new >= 5,
            "only {live_new} live publications after the restart: {}",
            ctx()
        );
        let (_, last_epoch, last_offset) = acks.last().unwrap();
        assert_eq!(
            position,
            Some((last_epoch.clone(), *last_offset)),
            "{}",
            ctx()
        );
    }
    eprintln!(
        "published {} ({} acknowledged, {} failed, {} during the outage); client events: {:?}",
        published.len(),
        acks.len(),
        failed.len(),
        outage.len(),
        logs.iter()
            .map(|events| events
                .iter()
                .filter(|e| !matches!(e, Event::Publication(..)))
                .collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
}
