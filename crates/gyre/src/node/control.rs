//! Node-to-node control: heartbeats, forwarded server-API actions and surveys.
//!
//! Every node broadcasts its counts every `node_info_interval` (3 s, as upstream); a node
//! not heard from for three heartbeats is forgotten. A node seeing another node for the
//! first time sends its own info straight to it (upstream's `nodeCmd` → `pubNode(uid)`),
//! so two nodes started together list each other without waiting for a heartbeat. Actions on a user's connections (disconnect, unsubscribe,
//! subscribe, refresh) run locally and are broadcast so that other nodes apply them to
//! their own connections. Surveys ask every known node and wait for all answers or a
//! timeout; a survey of one node carries an emulation request to the node holding its
//! session (`centrifuge_emulation`, as upstream).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use gyre_protocol::{Protocol, control, proto};
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{ClientFilter, NodeInfo, NodeInner};
use crate::broker::{BrokerError, StreamPosition};
use crate::controller::ControlEventHandler;
use crate::events::{RefreshReply, SubscribeOptions};
use crate::metrics::{Action, Message, SurveyOp};
use crate::session::Session;
use crate::{Disconnect, Node, Unsubscribe};

/// Survey operation answering the channels of a node with their subscriber counts.
const SURVEY_CHANNELS: &str = "channels";

/// Survey operation carrying an emulation request (a Protobuf `EmulationRequest`) to the
/// node holding its session; upstream's name, so that the nodes of a mixed cluster
/// understand each other.
pub(crate) const SURVEY_EMULATION: &str = "centrifuge_emulation";

/// Survey codes answering a forwarded emulation request, as upstream numbers them.
const EMULATION_TAKEN: u32 = 0;
const EMULATION_BAD_REQUEST: u32 = 1;
const EMULATION_NO_SESSION: u32 = 2;

/// One survey answer: the answering node, its code and its data.
type SurveyAnswer = (String, u32, Bytes);

/// What this node knows about the cluster.
#[derive(Debug, Default)]
pub(crate) struct Cluster {
    nodes: Mutex<HashMap<String, (NodeInfo, Instant)>>,
    next_survey: AtomicU64,
    surveys: Mutex<HashMap<u64, mpsc::UnboundedSender<SurveyAnswer>>>,
}

fn info_from(n: &control::Node) -> NodeInfo {
    NodeInfo {
        id: n.uid.clone(),
        name: n.name.clone(),
        version: n.version.clone(),
        num_clients: n.num_clients as usize,
        num_users: n.num_users as usize,
        num_channels: n.num_channels as usize,
        num_subscriptions: n.num_subs as usize,
        uptime: u64::from(n.uptime),
    }
}

fn filter_of(client: &str, session: &str, whitelist: Vec<String>) -> ClientFilter {
    ClientFilter {
        client: (!client.is_empty()).then(|| client.to_owned()),
        session: (!session.is_empty()).then(|| session.to_owned()),
        whitelist,
    }
}

/// Feeds control messages to the node without keeping it alive.
pub(crate) struct NodeControl(pub(crate) Weak<NodeInner>);

impl ControlEventHandler for NodeControl {
    fn handle_control(&self, data: Bytes) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        inner.shared.metrics.received(Message::Control);
        let command = match control::Command::decode(data) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable control message");
                return;
            }
        };
        // A node applies its own actions before broadcasting them.
        if command.uid == inner.shared.id {
            return;
        }
        let node = Node { inner };
        // Connection actions may await (unsubscribe cleans up presence): run them off the
        // engine's reader.
        tokio::spawn(async move { node.apply_control(command).await });
    }
}

impl Node {
    /// Starts the controller and the heartbeat task.
    pub(crate) async fn run_control(&self) -> Result<(), BrokerError> {
        let Some(controller) = self.inner.controller.clone() else {
            return Ok(());
        };
        controller
            .run(
                &self.inner.shared.id,
                Arc::new(NodeControl(Arc::downgrade(&self.inner))),
            )
            .await?;
        let weak = Arc::downgrade(&self.inner);
        let period = self.heartbeat_interval();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let node = Node { inner };
                if node.is_shutting_down() {
                    return;
                }
                node.heartbeat().await;
            }
        });
        Ok(())
    }

    /// The heartbeat period; a zero in the configuration falls back to upstream's 3 s.
    fn heartbeat_interval(&self) -> Duration {
        match self.inner.shared.config.node_info_interval {
            d if d.is_zero() => Duration::from_secs(3),
            d => d,
        }
    }

    async fn heartbeat(&self) {
        if let Err(e) = self.announce(None).await {
            tracing::warn!(error = %e, "node heartbeat failed");
        }
        let stale = Instant::now() - self.heartbeat_interval() * 3;
        self.inner
            .cluster
            .nodes
            .lock()
            .retain(|_, (_, seen)| *seen >= stale);
    }

    /// Sends this node's info to every node, or to node `to` only.
    async fn announce(&self, to: Option<&str>) -> Result<(), BrokerError> {
        let info = self.info();
        let command = control::Command {
            uid: self.inner.shared.id.clone(),
            node: Some(control::Node {
                uid: info.id.clone(),
                name: info.name.clone(),
                version: self.inner.shared.config.version.clone(),
                num_clients: info.num_clients as u32,
                num_users: info.num_users as u32,
                num_channels: info.num_channels as u32,
                uptime: info.uptime as u32,
                num_subs: info.num_subscriptions as u32,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.send_control(command, to).await
    }

    async fn send_control(
        &self,
        command: control::Command,
        to: Option<&str>,
    ) -> Result<(), BrokerError> {
        match &self.inner.controller {
            Some(c) => {
                c.publish_control(command.encode_to_vec().into(), to)
                    .await?;
                self.inner.shared.metrics.sent(Message::Control);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Broadcasts an action on connections to the other nodes.
    pub(crate) async fn broadcast_action(&self, mut command: control::Command) {
        if self.inner.controller.is_none() {
            return;
        }
        command.uid = self.inner.shared.id.clone();
        if let Err(e) = self.send_control(command, None).await {
            tracing::warn!(error = %e, "control broadcast failed");
        }
    }

    async fn apply_control(&self, command: control::Command) {
        if let Some(n) = command.node {
            let info = info_from(&n);
            let stale = Instant::now().checked_sub(self.heartbeat_interval() * 3);
            let previous = self
                .inner
                .cluster
                .nodes
                .lock()
                .insert(n.uid.clone(), (info, Instant::now()));
            // New to this node (or forgotten): answer directly rather than let it wait a
            // whole heartbeat to learn about us.
            let is_new = previous.is_none_or(|(_, seen)| stale.is_some_and(|stale| seen < stale));
            if is_new && let Err(e) = self.announce(Some(&n.uid)).await {
                tracing::warn!(node = %n.uid, error = %e, "node info answer failed");
            }
        } else if let Some(d) = command.disconnect {
            let filter = filter_of(&d.client, &d.session, d.whitelist);
            let disconnect = Disconnect::new(d.code, d.reason);
            self.local_disconnect(&d.user, &filter, disconnect);
        } else if let Some(u) = command.unsubscribe {
            let filter = filter_of(&u.client, &u.session, Vec::new());
            let unsubscribe = if u.code == 0 {
                Unsubscribe::SERVER
            } else {
                Unsubscribe::new(u.code, u.reason)
            };
            self.local_unsubscribe(&u.user, &u.channel, &filter, unsubscribe)
                .await;
        } else if let Some(s) = command.subscribe {
            let filter = filter_of(&s.client, &s.session, Vec::new());
            let mut options = SubscribeOptions::new()
                .presence(s.presence)
                .join_leave(s.join_leave)
                .positioning(s.position)
                .recovery(s.recover)
                .channel_info(s.channel_info)
                .data(s.data)
                .expire_at(s.expire_at);
            options.recover_since = s
                .recover_since
                .map(|p| StreamPosition::new(p.offset, p.epoch));
            if let Err(e) = self
                .local_subscribe(&s.user, &s.channel, options, &filter)
                .await
            {
                tracing::warn!(channel = %s.channel, error = %e, "forwarded subscribe failed");
            }
        } else if let Some(r) = command.refresh {
            let filter = filter_of(&r.client, &r.session, Vec::new());
            let mut refresh = if r.expired {
                RefreshReply::expired()
            } else {
                RefreshReply::new(r.expire_at)
            };
            if !r.info.is_empty() {
                refresh.info = Some(r.info);
            }
            self.local_refresh(&r.user, &filter, &refresh);
        } else if let Some(req) = command.survey_request {
            let (code, data) = if req.op == SURVEY_EMULATION {
                (
                    self.handle_forwarded_emulation(req.data).await,
                    Bytes::new(),
                )
            } else {
                (0, self.answer_survey(&req.op))
            };
            let response = control::Command {
                uid: self.inner.shared.id.clone(),
                survey_response: Some(control::SurveyResponse {
                    id: req.id,
                    code,
                    data,
                }),
                ..Default::default()
            };
            if let Err(e) = self.send_control(response, Some(&command.uid)).await {
                tracing::warn!(error = %e, "survey answer failed");
            }
        } else if let Some(resp) = command.survey_response {
            let sender = self.inner.cluster.surveys.lock().get(&resp.id).cloned();
            if let Some(sender) = sender {
                let _ = sender.send((command.uid, resp.code, resp.data));
            }
        }
    }

    /// This node's answer to a survey operation.
    fn answer_survey(&self, op: &str) -> Bytes {
        match op {
            SURVEY_CHANNELS => {
                // A compact encoding: one `name\tcount\n` line per channel.
                let mut out = String::new();
                for (name, count) in self.channel_counts() {
                    out.push_str(&name.replace(['\t', '\n'], " "));
                    out.push('\t');
                    out.push_str(&count.to_string());
                    out.push('\n');
                }
                Bytes::from(out)
            }
            _ => Bytes::new(),
        }
    }

    /// Asks every known node (this one included) and collects the answers that arrive
    /// within `timeout`.
    async fn survey(&self, op: &str, timeout: Duration) -> Vec<(String, Bytes)> {
        let started = std::time::Instant::now();
        let answers = self.survey_all(op, timeout).await;
        self.observe_survey(op, started);
        answers
    }

    /// Counts a survey as upstream's `Node.Survey` does: the `survey` action and its
    /// duration under its op.
    fn observe_survey(&self, op: &str, started: std::time::Instant) {
        let metrics = &self.inner.shared.metrics;
        metrics.action(Action::Survey);
        let op = match op {
            SURVEY_CHANNELS => SurveyOp::Channels,
            SURVEY_EMULATION => SurveyOp::Emulation,
            _ => return,
        };
        metrics.survey(op).observe_since(started);
    }

    async fn survey_all(&self, op: &str, timeout: Duration) -> Vec<(String, Bytes)> {
        let mut answers = vec![(self.inner.shared.id.clone(), self.answer_survey(op))];
        if self.inner.controller.is_none() {
            return answers;
        }
        let expected = self.nodes().len().saturating_sub(1);
        if expected == 0 {
            return answers;
        }
        let id = self
            .inner
            .cluster
            .next_survey
            .fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.inner.cluster.surveys.lock().insert(id, tx);
        let request = control::Command {
            uid: self.inner.shared.id.clone(),
            survey_request: Some(control::SurveyRequest {
                id,
                op: op.to_owned(),
                data: Bytes::new(),
            }),
            ..Default::default()
        };
        if let Err(e) = self.send_control(request, None).await {
            tracing::warn!(error = %e, "survey request failed");
        } else {
            let deadline = Instant::now() + timeout;
            while answers.len() < expected + 1 {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some((node, _, data))) => answers.push((node, data)),
                    _ => break,
                }
            }
        }
        self.inner.cluster.surveys.lock().remove(&id);
        answers
    }

    /// Asks node `to` alone and waits at most `timeout` for its answer: `Ok(None)` when
    /// none came in time.
    pub(crate) async fn survey_node(
        &self,
        to: &str,
        op: &str,
        data: Bytes,
        timeout: Duration,
    ) -> Result<Option<(u32, Bytes)>, BrokerError> {
        let started = std::time::Instant::now();
        let result = self.survey_one(to, op, data, timeout).await;
        self.observe_survey(op, started);
        result
    }

    async fn survey_one(
        &self,
        to: &str,
        op: &str,
        data: Bytes,
        timeout: Duration,
    ) -> Result<Option<(u32, Bytes)>, BrokerError> {
        let id = self
            .inner
            .cluster
            .next_survey
            .fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.inner.cluster.surveys.lock().insert(id, tx);
        let request = control::Command {
            uid: self.inner.shared.id.clone(),
            survey_request: Some(control::SurveyRequest {
                id,
                op: op.to_owned(),
                data,
            }),
            ..Default::default()
        };
        let result = match self.send_control(request, Some(to)).await {
            Err(e) => Err(e),
            Ok(()) => {
                let deadline = Instant::now() + timeout;
                loop {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some((node, code, data))) if node == to => break Ok(Some((code, data))),
                        Ok(Some(_)) => {}
                        _ => break Ok(None),
                    }
                }
            }
        };
        self.inner.cluster.surveys.lock().remove(&id);
        result
    }

    /// Feeds an emulation request forwarded by another node to its session here, as if
    /// it came through this node's endpoint; answers the survey code.
    pub(crate) async fn handle_forwarded_emulation(&self, data: Bytes) -> u32 {
        let Ok(req) = proto::EmulationRequest::decode(data) else {
            return EMULATION_BAD_REQUEST;
        };
        let Some(session) = self.emulation_session(&req.session) else {
            return EMULATION_NO_SESSION;
        };
        let commands = match session.protocol() {
            // Upstream carries JSON commands as the JSON string the client sent.
            Protocol::Json => match serde_json::from_slice::<String>(&req.data) {
                Ok(s) => Bytes::from(s),
                Err(_) => return EMULATION_BAD_REQUEST,
            },
            Protocol::Protobuf => req.data,
        };
        if !commands.is_empty()
            && let Err(d) = session.handle_message(commands).await
        {
            session.outbound().close(d);
        }
        EMULATION_TAKEN
    }

    /// Whether node `id` is this one or announced itself within the last three
    /// heartbeats.
    pub(crate) fn knows_node(&self, id: &str) -> bool {
        if id == self.inner.shared.id {
            return true;
        }
        let stale = Instant::now().checked_sub(self.heartbeat_interval() * 3);
        self.inner
            .cluster
            .nodes
            .lock()
            .get(id)
            .is_some_and(|(_, seen)| stale.is_none_or(|stale| *seen >= stale))
    }

    /// Every node of the cluster, this one included, as last announced.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let mut nodes = vec![self.info()];
        let known = self.inner.cluster.nodes.lock();
        nodes.extend(
            known
                .iter()
                .filter(|(id, _)| **id != self.inner.shared.id)
                .map(|(_, (info, _))| info.clone()),
        );
        nodes
    }

    /// Live nodes of the cluster, this one included: the others count while their last
    /// heartbeat is younger than three heartbeat periods (the heartbeat itself forgets
    /// them only on its next tick).
    pub(crate) fn num_nodes(&self) -> usize {
        let stale = Instant::now().checked_sub(self.heartbeat_interval() * 3);
        let known = self.inner.cluster.nodes.lock();
        1 + known
            .iter()
            .filter(|(id, (_, seen))| {
                **id != self.inner.shared.id && stale.is_none_or(|stale| *seen >= stale)
            })
            .count()
    }

    /// Channels with subscribers on any node and their subscriber counts, summed over
    /// the nodes that answered within `timeout`.
    pub async fn cluster_channels(&self, timeout: Duration) -> Vec<(String, usize)> {
        let mut merged: HashMap<String, usize> = HashMap::new();
        for (_, data) in self.survey(SURVEY_CHANNELS, timeout).await {
            for line in String::from_utf8_lossy(&data).lines() {
                if let Some((name, count)) = line.rsplit_once('\t') {
                    *merged.entry(name.to_owned()).or_default() += count.parse().unwrap_or(0);
                }
            }
        }
        let mut out: Vec<_> = merged.into_iter().collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::node::test_bus::{Bus, BusController};
    use crate::{ConnectReply, Credentials, LocalConnection, SubscribeOptions, SubscribeReply};

    async fn node_on(bus: &Arc<Bus>) -> Node {
        let node = Node::builder()
            .controller_arc(Arc::new(BusController(bus.clone())))
            .build();
        node.on_connecting(|e| async move { Ok(ConnectReply::new(Credentials::new(e.token))) });
        node.on_connect(|client| {
            client.on_subscribe(|_| async { Ok(SubscribeReply::new(SubscribeOptions::new())) });
        });
        node.run().await.unwrap();
        node
    }

    async fn connected(node: &Node, user: &str, channel: &str) -> LocalConnection {
        let conn = LocalConnection::open(node, false).unwrap();
        conn.handle(Bytes::from(format!(
            "{{\"id\":1,\"connect\":{{\"token\":\"{user}\"}}}}\n{{\"id\":2,\"subscribe\":{{\"channel\":\"{channel}\"}}}}"
        )))
        .await
        .unwrap();
        let mut out = Vec::new();
        assert!(conn.drain(&mut out).is_none());
        conn
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn nodes_discover_each_other_and_forward_actions() {
        let bus = Arc::new(Bus::default());
        let a = node_on(&bus).await;
        let b = node_on(&bus).await;
        let on_b = connected(&b, "alice", "news").await;
        let _on_a = connected(&a, "bob", "news").await;
        // The first heartbeat goes out when the nodes start.
        tokio::time::sleep(Duration::from_millis(50)).await;
        settle().await;
        let mut ids: Vec<_> = a.nodes().into_iter().map(|n| n.id).collect();
        ids.sort();
        let mut expected = vec![a.id().to_owned(), b.id().to_owned()];
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(b.nodes().len(), 2);

        let channels = a.cluster_channels(Duration::from_secs(1)).await;
        assert_eq!(channels, vec![("news".to_owned(), 2)]);

        // A disconnect asked on A reaches the user's connection on B.
        a.disconnect("alice", Disconnect::FORCE_NO_RECONNECT).await;
        settle().await;
        let mut out = Vec::new();
        assert_eq!(on_b.drain(&mut out), Some(Disconnect::FORCE_NO_RECONNECT));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_node_is_answered_directly_without_waiting_for_a_heartbeat() {
        let bus = Arc::new(Bus::default());
        let config = crate::Config {
            node_info_interval: Duration::from_secs(3600),
            ..Default::default()
        };
        let start = |bus: Arc<Bus>, config: crate::Config| async move {
            let node = Node::builder()
                .config(config)
                .controller_arc(Arc::new(BusController(bus)))
                .build();
            node.run().await.unwrap();
            node
        };
        let a = start(bus.clone(), config.clone()).await;
        // A's first heartbeat has gone out before B exists; the next is an hour away.
        settle().await;
        let b = start(bus.clone(), config).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        settle().await;
        let ids = |n: &Node| {
            let mut ids: Vec<_> = n.nodes().into_iter().map(|n| n.id).collect();
            ids.sort();
            ids
        };
        let mut both = vec![a.id().to_owned(), b.id().to_owned()];
        both.sort();
        assert_eq!(ids(&a), both, "A heard B's first heartbeat");
        assert_eq!(ids(&b), both, "A answered B directly");
    }

    fn num_nodes_gauge(node: &Node) -> String {
        let mut out = String::new();
        node.write_metrics("centrifugo", &mut out);
        out.lines()
            .find(|l| l.starts_with("centrifugo_node_num_nodes "))
            .expect("gauge written")
            .to_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn num_nodes_counts_live_nodes() {
        let bus = Arc::new(Bus::default());
        let a = node_on(&bus).await;
        assert_eq!(num_nodes_gauge(&a), "centrifugo_node_num_nodes 1");
        let b = node_on(&bus).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        settle().await;
        assert_eq!(num_nodes_gauge(&a), "centrifugo_node_num_nodes 2");
        assert_eq!(num_nodes_gauge(&b), "centrifugo_node_num_nodes 2");

        // B stops announcing itself: A counts it until three heartbeats have passed.
        drop(b);
        tokio::time::sleep(Duration::from_secs(6)).await;
        settle().await;
        assert_eq!(num_nodes_gauge(&a), "centrifugo_node_num_nodes 2");
        tokio::time::sleep(Duration::from_secs(6)).await;
        settle().await;
        assert_eq!(num_nodes_gauge(&a), "centrifugo_node_num_nodes 1");
    }

    #[tokio::test]
    async fn forwarded_unsubscribe_subscribe_and_refresh() {
        let bus = Arc::new(Bus::default());
        let a = node_on(&bus).await;
        let b = node_on(&bus).await;
        let on_b = connected(&b, "carol", "room").await;
        a.unsubscribe("carol", "room").await;
        settle().await;
        let mut out = Vec::new();
        on_b.drain(&mut out);
        let text = String::from_utf8_lossy(&out.concat()).to_string();
        assert!(text.contains(r#""unsubscribe":{"code":2000"#), "{text}");

        a.subscribe("carol", "extra", SubscribeOptions::new())
            .await
            .unwrap();
        settle().await;
        out.clear();
        on_b.drain(&mut out);
        let text = String::from_utf8_lossy(&out.concat()).to_string();
        assert!(
            text.contains(r#""channel":"extra","subscribe":{"#),
            "{text}"
        );

        a.refresh("carol", &ClientFilter::default(), RefreshReply::expired())
            .await;
        settle().await;
        assert_eq!(on_b.drain(&mut out), Some(Disconnect::EXPIRED));
    }
}
