//! The families a node keeps: Centrifugo's `node_*`, `client_*` and `transport_*`,
//! with their label sets. `channel_namespace` is written empty, as Centrifugo v6 writes
//! it: its library fills the label only when an application sets
//! `MetricsConfig.GetChannelNamespaceLabel`, and Centrifugo never does (no config key
//! turns it on). `accept_protocol` is empty too (Gyre does not tell HTTP versions apart
//! there). `frame_type` carries the frame type names of Centrifugo's protocol library
//! (`push_publication`, `subscribe`, `server_ping`, …).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use gyre_protocol::proto;

use super::{
    BROADCAST_BUCKETS, COMMAND_BUCKETS, Counter, Exposition, Family, Gauge, Histogram,
    PUB_SUB_LAG_BUCKETS, RECOVERED_PUBLICATIONS_BUCKETS, SURVEY_BUCKETS,
};

/// Per-transport counters, held by each connection and its outbound queue: messages and
/// bytes by frame type (indexed by [`FrameType`]), and the ping/pong round trips.
#[derive(Debug)]
pub(crate) struct TransportCounters {
    messages_sent: Box<[Counter]>,
    bytes_sent: Box<[Counter]>,
    messages_received: Box<[Counter]>,
    bytes_received: Box<[Counter]>,
    pub(crate) ping_pong: Histogram,
}

impl Default for TransportCounters {
    fn default() -> Self {
        let row = || FrameType::ALL.iter().map(|_| Counter::default()).collect();
        TransportCounters {
            messages_sent: row(),
            bytes_sent: row(),
            messages_received: row(),
            bytes_received: row(),
            ping_pong: Histogram::new(COMMAND_BUCKETS),
        }
    }
}

impl TransportCounters {
    /// `n` messages of `frame` type, `bytes` in all, went to a client.
    pub(crate) fn sent(&self, frame: FrameType, n: u64, bytes: u64) {
        self.messages_sent[frame as usize].add(n);
        self.bytes_sent[frame as usize].add(bytes);
    }

    /// One command (or pong) of `bytes` came from a client.
    pub(crate) fn received(&self, frame: FrameType, bytes: u64) {
        self.messages_received[frame as usize].inc();
        self.bytes_received[frame as usize].add(bytes);
    }

    #[cfg(test)]
    pub(crate) fn sent_of(&self, frame: FrameType) -> u64 {
        self.messages_sent[frame as usize].get()
    }
}

macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $label:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name {
            $($variant,)*
        }

        impl $name {
            pub(crate) const ALL: &[$name] = &[$($name::$variant,)*];

            pub(crate) fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }
    };
}

label_enum! {
    /// The `method` label of client command metrics (upstream's frame type names).
    ClientMethod {
        Connect = "connect",
        Subscribe = "subscribe",
        Unsubscribe = "unsubscribe",
        Publish = "publish",
        Presence = "presence",
        PresenceStats = "presence_stats",
        History = "history",
        Send = "send",
        Rpc = "rpc",
        Refresh = "refresh",
        SubRefresh = "sub_refresh",
        Unknown = "unknown",
    }
}

label_enum! {
    /// The `frame_type` label of the transport metrics: what a message sent to or
    /// received from a client is (upstream's `protocol.FrameType` names). A reply has the
    /// type of the command it answers.
    FrameType {
        ServerPing = "server_ping",
        ClientPong = "client_pong",
        PushConnect = "push_connect",
        PushSubscribe = "push_subscribe",
        PushPublication = "push_publication",
        PushJoin = "push_join",
        PushLeave = "push_leave",
        PushUnsubscribe = "push_unsubscribe",
        PushMessage = "push_message",
        PushRefresh = "push_refresh",
        PushDisconnect = "push_disconnect",
        Connect = "connect",
        Subscribe = "subscribe",
        Publish = "publish",
        Unsubscribe = "unsubscribe",
        Rpc = "rpc",
        Presence = "presence",
        PresenceStats = "presence_stats",
        History = "history",
        Refresh = "refresh",
        SubRefresh = "sub_refresh",
        Send = "send",
        Unknown = "unknown",
    }
}

impl FrameType {
    /// The type of an encoded reply: the push it carries or the command it answers.
    /// An error reply carries no result to tell; its writer names the command instead.
    pub(crate) fn of_reply(reply: &proto::Reply) -> FrameType {
        if let Some(push) = &reply.push {
            return FrameType::of_push(push);
        }
        if reply.connect.is_some() {
            FrameType::Connect
        } else if reply.subscribe.is_some() {
            FrameType::Subscribe
        } else if reply.unsubscribe.is_some() {
            FrameType::Unsubscribe
        } else if reply.publish.is_some() {
            FrameType::Publish
        } else if reply.presence.is_some() {
            FrameType::Presence
        } else if reply.presence_stats.is_some() {
            FrameType::PresenceStats
        } else if reply.history.is_some() {
            FrameType::History
        } else if reply.rpc.is_some() {
            FrameType::Rpc
        } else if reply.refresh.is_some() {
            FrameType::Refresh
        } else if reply.sub_refresh.is_some() {
            FrameType::SubRefresh
        } else {
            FrameType::Unknown
        }
    }

    /// The type of a push.
    pub(crate) fn of_push(push: &proto::Push) -> FrameType {
        if push.r#pub.is_some() {
            FrameType::PushPublication
        } else if push.join.is_some() {
            FrameType::PushJoin
        } else if push.leave.is_some() {
            FrameType::PushLeave
        } else if push.unsubscribe.is_some() {
            FrameType::PushUnsubscribe
        } else if push.message.is_some() {
            FrameType::PushMessage
        } else if push.subscribe.is_some() {
            FrameType::PushSubscribe
        } else if push.connect.is_some() {
            FrameType::PushConnect
        } else if push.disconnect.is_some() {
            FrameType::PushDisconnect
        } else if push.refresh.is_some() {
            FrameType::PushRefresh
        } else {
            FrameType::Unknown
        }
    }
}

impl From<ClientMethod> for FrameType {
    fn from(m: ClientMethod) -> FrameType {
        match m {
            ClientMethod::Connect => FrameType::Connect,
            ClientMethod::Subscribe => FrameType::Subscribe,
            ClientMethod::Unsubscribe => FrameType::Unsubscribe,
            ClientMethod::Publish => FrameType::Publish,
            ClientMethod::Presence => FrameType::Presence,
            ClientMethod::PresenceStats => FrameType::PresenceStats,
            ClientMethod::History => FrameType::History,
            ClientMethod::Send => FrameType::Send,
            ClientMethod::Rpc => FrameType::Rpc,
            ClientMethod::Refresh => FrameType::Refresh,
            ClientMethod::SubRefresh => FrameType::SubRefresh,
            ClientMethod::Unknown => FrameType::Unknown,
        }
    }
}

label_enum! {
    /// The `op` label of `node_survey_duration_seconds`: the surveys a node sends.
    SurveyOp {
        Channels = "channels",
        Emulation = "centrifuge_emulation",
    }
}

label_enum! {
    /// The `action` label of `node_action_count`.
    Action {
        AddClient = "add_client",
        RemoveClient = "remove_client",
        AddSubscription = "add_subscription",
        RemoveSubscription = "remove_subscription",
        BrokerSubscribe = "broker_subscribe",
        BrokerUnsubscribe = "broker_unsubscribe",
        AddPresence = "add_presence",
        RemovePresence = "remove_presence",
        Presence = "presence",
        PresenceStats = "presence_stats",
        History = "history",
        HistoryRecover = "history_recover",
        HistoryStreamTop = "history_stream_top",
        HistoryRemove = "history_remove",
        Survey = "survey",
        Notify = "notify",
    }
}

/// Message types of `node_messages_sent_count` / `node_messages_received_count`.
const MESSAGE_TYPES: [&str; 4] = ["publication", "join", "leave", "control"];

/// `client_name` and `client_version` as upstream labels them without a list of
/// registered clients: whether the client sent one, not its value (clients choose it, so
/// its value would let them grow the number of series without bound).
pub(crate) fn client_labels(name: &str, version: &str) -> (&'static str, &'static str) {
    (
        if name.is_empty() {
            "unnamed"
        } else {
            "unregistered"
        },
        if version.is_empty() {
            "unversioned"
        } else {
            "unregistered"
        },
    )
}

/// One label set of `client_connections_accepted` and `client_connections_inflight`.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStats {
    pub(crate) accepted: Counter,
    pub(crate) inflight: Gauge,
}

/// One `client_name` of `client_subscriptions_accepted` / `_inflight`.
#[derive(Debug, Default)]
pub(crate) struct SubscriptionStats {
    pub(crate) accepted: Counter,
    pub(crate) inflight: Gauge,
}

/// What a node measures.
#[derive(Debug)]
pub(crate) struct NodeMetrics {
    messages_sent: [Counter; 4],
    messages_received: [Counter; 4],
    actions: Box<[Counter]>,
    pub(crate) broadcast_duration: Histogram,
    pub(crate) pub_sub_lag: Histogram,
    /// Deliveries a subscriber's tags filter left out (`node_tags_filter_dropped_publications`).
    pub(crate) tags_filter_dropped: Counter,
    /// Indexed by [`SurveyOp`].
    surveys: Box<[Histogram]>,
    connections: Family<ConnectionStats>,
    /// Indexed by whether the client sent a name (`unnamed`, `unregistered`).
    subscriptions: [SubscriptionStats; 2],
    commands: Box<[Histogram]>,
    reply_errors: Family<Counter>,
    server_unsubscribes: Family<Counter>,
    server_disconnects: Family<Counter>,
    outgoing_closes: Family<Counter>,
    /// `[recovered][has_recovered_publications]`, `no` before `yes`.
    recover: [[Counter; 2]; 2],
    /// `client_recovered_publications`, when enabled.
    recovered_publications: Option<Histogram>,
    transports: RwLock<HashMap<&'static str, Arc<TransportCounters>>>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            messages_sent: Default::default(),
            messages_received: Default::default(),
            actions: Action::ALL.iter().map(|_| Counter::default()).collect(),
            broadcast_duration: Histogram::new(BROADCAST_BUCKETS),
            pub_sub_lag: Histogram::new(PUB_SUB_LAG_BUCKETS),
            tags_filter_dropped: Counter::default(),
            surveys: SurveyOp::ALL
                .iter()
                .map(|_| Histogram::with_quantiles(SURVEY_BUCKETS))
                .collect(),
            connections: Family::new(ConnectionStats::default),
            subscriptions: Default::default(),
            commands: ClientMethod::ALL
                .iter()
                .map(|_| Histogram::with_quantiles(COMMAND_BUCKETS))
                .collect(),
            reply_errors: Family::new(Counter::default),
            server_unsubscribes: Family::new(Counter::default),
            server_disconnects: Family::new(Counter::default),
            outgoing_closes: Family::new(Counter::default),
            recover: Default::default(),
            recovered_publications: None,
            transports: RwLock::new(HashMap::new()),
        }
    }
}

impl NodeMetrics {
    pub(crate) fn new(recovered_publications_histogram: bool) -> Self {
        NodeMetrics {
            recovered_publications: recovered_publications_histogram
                .then(|| Histogram::new(RECOVERED_PUBLICATIONS_BUCKETS)),
            ..NodeMetrics::default()
        }
    }
}

/// A message type of the node's broker traffic.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Message {
    Publication = 0,
    Join = 1,
    Leave = 2,
    Control = 3,
}

impl NodeMetrics {
    pub(crate) fn transport(&self, name: &'static str) -> Arc<TransportCounters> {
        if let Some(t) = self.transports.read().get(name) {
            return t.clone();
        }
        self.transports.write().entry(name).or_default().clone()
    }

    pub(crate) fn sent(&self, message: Message) {
        self.messages_sent[message as usize].inc();
    }

    pub(crate) fn received(&self, message: Message) {
        self.messages_received[message as usize].inc();
    }

    pub(crate) fn action(&self, action: Action) {
        self.actions[action as usize].inc();
    }

    pub(crate) fn command(&self, method: ClientMethod) -> &Histogram {
        &self.commands[method as usize]
    }

    pub(crate) fn survey(&self, op: SurveyOp) -> &Histogram {
        &self.surveys[op as usize]
    }

    /// A publication made at `time` (Unix milliseconds, 0 when unknown) reached this
    /// node's broker subscriber now. Upstream takes the absolute difference, so a clock
    /// behind another node's still counts as lag.
    pub(crate) fn pub_sub_delivered(&self, time: i64) {
        if time <= 0 {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.pub_sub_lag
            .observe((now - time).unsigned_abs() as f64 / 1000.0);
    }

    /// The connection counters of a connection that just authenticated.
    pub(crate) fn connection(
        &self,
        transport: &'static str,
        client_name: &str,
        client_version: &str,
    ) -> Arc<ConnectionStats> {
        let (name, version) = client_labels(client_name, client_version);
        self.connections.get(&[transport, "", name, version])
    }

    pub(crate) fn subscriptions(&self, named: bool) -> &SubscriptionStats {
        &self.subscriptions[usize::from(named)]
    }

    pub(crate) fn reply_error(&self, method: ClientMethod, code: u32) {
        self.reply_errors
            .get(&[method.label(), &code.to_string(), ""])
            .inc();
    }

    pub(crate) fn server_unsubscribe(&self, code: u32) {
        self.server_unsubscribes.get(&[&code.to_string(), ""]).inc();
    }

    pub(crate) fn server_disconnect(&self, code: u32) {
        self.server_disconnects.get(&[&code.to_string()]).inc();
    }

    pub(crate) fn outgoing_close(&self, transport: &str, code: u32) {
        self.outgoing_closes
            .get(&[transport, &code.to_string()])
            .inc();
    }

    pub(crate) fn recovered(&self, recovered: bool, publications: usize) {
        self.recover[usize::from(recovered)][usize::from(publications > 0)].inc();
        if recovered && let Some(h) = &self.recovered_publications {
            h.observe(publications as f64);
        }
    }

    pub(crate) fn write(&self, e: &mut Exposition<'_>) {
        let yes_no = |b: usize| if b == 1 { "yes" } else { "no" };
        e.family(
            "node_messages_sent_count",
            "Number of messages sent by node to broker.",
            super::Kind::Counter,
        );
        for (t, c) in MESSAGE_TYPES.iter().zip(&self.messages_sent) {
            e.value(&[("type", t), ("channel_namespace", "")], c.get());
        }
        e.family(
            "node_messages_received_count",
            "Number of messages received from broker.",
            super::Kind::Counter,
        );
        for (t, c) in MESSAGE_TYPES.iter().zip(&self.messages_received) {
            e.value(&[("type", t), ("channel_namespace", "")], c.get());
        }
        e.family(
            "node_action_count",
            "Number of various actions called.",
            super::Kind::Counter,
        );
        for (a, c) in Action::ALL.iter().zip(self.actions.iter()) {
            if c.get() > 0 {
                e.value(&[("action", a.label()), ("channel_namespace", "")], c.get());
            }
        }
        e.family(
            "node_broadcast_duration_seconds",
            "Broadcast duration in seconds",
            super::Kind::Histogram,
        )
        .histogram(
            &[("type", "publication"), ("channel_namespace", "")],
            &self.broadcast_duration,
        );
        if self.pub_sub_lag.count() > 0 {
            e.family(
                "node_pub_sub_lag_seconds",
                "Pub sub lag in seconds",
                super::Kind::Histogram,
            )
            .histogram(&[("channel_namespace", "")], &self.pub_sub_lag);
        }
        e.family(
            "node_tags_filter_dropped_publications",
            "Number of publications dropped due to tags filtering.",
            super::Kind::Counter,
        )
        .value(&[("channel_namespace", "")], self.tags_filter_dropped.get());
        let surveys: Vec<(Vec<(&str, &str)>, &Histogram)> = SurveyOp::ALL
            .iter()
            .zip(self.surveys.iter())
            .filter(|(_, h)| h.count() > 0)
            .map(|(op, h)| (vec![("op", op.label())], h))
            .collect();
        e.durations("node_survey_duration_seconds", "Survey duration.", &surveys);

        let connections = self.connections.snapshot();
        let conn_labels = |v: &[String]| -> [(&'static str, String); 4] {
            [
                ("transport", v[0].clone()),
                ("accept_protocol", v[1].clone()),
                ("client_name", v[2].clone()),
                ("client_version", v[3].clone()),
            ]
        };
        e.family(
            "client_connections_accepted",
            "Count of accepted transports.",
            super::Kind::Counter,
        );
        for (values, s) in &connections {
            let l = conn_labels(values);
            let l: Vec<(&str, &str)> = l.iter().map(|(n, v)| (*n, v.as_str())).collect();
            e.value(&l, s.accepted.get());
        }
        e.family(
            "client_connections_inflight",
            "Number of inflight client connections.",
            super::Kind::Gauge,
        );
        for (values, s) in &connections {
            let l = conn_labels(values);
            let l: Vec<(&str, &str)> = l.iter().map(|(n, v)| (*n, v.as_str())).collect();
            e.value(&l, s.inflight.get());
        }
        let names = ["unnamed", "unregistered"];
        e.family(
            "client_subscriptions_accepted",
            "Count of accepted client subscriptions.",
            super::Kind::Counter,
        );
        for (name, s) in names.iter().zip(&self.subscriptions) {
            if s.accepted.get() > 0 {
                e.value(
                    &[("client_name", name), ("channel_namespace", "")],
                    s.accepted.get(),
                );
            }
        }
        e.family(
            "client_subscriptions_inflight",
            "Number of inflight client subscriptions.",
            super::Kind::Gauge,
        );
        for (name, s) in names.iter().zip(&self.subscriptions) {
            if s.accepted.get() > 0 {
                e.value(
                    &[("client_name", name), ("channel_namespace", "")],
                    s.inflight.get(),
                );
            }
        }

        let commands: Vec<(Vec<(&str, &str)>, &Histogram)> = ClientMethod::ALL
            .iter()
            .zip(self.commands.iter())
            .map(|(m, h)| (vec![("method", m.label()), ("channel_namespace", "")], h))
            .collect();
        e.durations(
            "client_command_duration_seconds",
            "Client command duration.",
            &commands,
        );
        e.counters(
            "client_num_reply_errors",
            "Number of errors in replies sent to clients.",
            &["method", "code", "channel_namespace"],
            &self.reply_errors,
        )
        .counters(
            "client_num_server_unsubscribes",
            "Number of server initiated unsubscribes.",
            &["code", "channel_namespace"],
            &self.server_unsubscribes,
        )
        .counters(
            "client_num_server_disconnects",
            "Number of server initiated disconnects.",
            &["code"],
            &self.server_disconnects,
        )
        .counters(
            "transport_outgoing_close_count",
            "Number of close frames sent to clients, by transport and code.",
            &["transport", "code"],
            &self.outgoing_closes,
        );
        e.family(
            "client_recover",
            "Count of recover operations with success/fail resolution.",
            super::Kind::Counter,
        );
        for (recovered, row) in self.recover.iter().enumerate() {
            for (has, c) in row.iter().enumerate() {
                if c.get() > 0 {
                    e.value(
                        &[
                            ("recovered", yes_no(recovered)),
                            ("channel_namespace", ""),
                            ("has_recovered_publications", yes_no(has)),
                        ],
                        c.get(),
                    );
                }
            }
        }
        if let Some(h) = &self.recovered_publications {
            e.family(
                "client_recovered_publications",
                "Number of publications recovered during subscription recovery.",
                super::Kind::Histogram,
            );
            if h.count() > 0 {
                e.histogram(&[("channel_namespace", "")], h);
            }
        }

        let transports: Vec<_> = {
            let mut t: Vec<_> = self
                .transports
                .read()
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            t.sort_by_key(|(k, _)| *k);
            t
        };
        type Pick = fn(&TransportCounters) -> &[Counter];
        let picks: [(&str, &str, Pick); 4] = [
            (
                "transport_messages_sent",
                "Number of messages sent to client connections over specific transport.",
                |c| &c.messages_sent[..],
            ),
            (
                "transport_messages_sent_size",
                "Size in bytes of messages sent to client connections over specific transport.",
                |c| &c.bytes_sent[..],
            ),
            (
                "transport_messages_received",
                "Number of messages received from client connections over specific transport.",
                |c| &c.messages_received[..],
            ),
            (
                "transport_messages_received_size",
                "Size in bytes of messages received from client connections over specific transport.",
                |c| &c.bytes_received[..],
            ),
        ];
        for (name, help, pick) in picks {
            e.family(name, help, super::Kind::Counter);
            for (transport, c) in &transports {
                // Only the frame types seen, as upstream creates a series on first use.
                for (frame, n) in FrameType::ALL.iter().zip(pick(c).iter()) {
                    if n.get() > 0 {
                        e.value(
                            &[
                                ("transport", transport),
                                ("frame_type", frame.label()),
                                ("channel_namespace", ""),
                            ],
                            n.get(),
                        );
                    }
                }
            }
        }
        e.family(
            "client_ping_pong_duration_seconds",
            "Ping/Pong duration in seconds",
            super::Kind::Histogram,
        );
        for (transport, c) in &transports {
            if c.ping_pong.count() > 0 {
                e.histogram(&[("transport", transport)], &c.ping_pong);
            }
        }

        // Upstream registers these for every broker and counts what its PUB/SUB reader
        // drops when its bounded hand-off buffer is full. Gyre's reader has no such
        // buffer: it hands each message to the hub inside the read loop, and the Redis
        // client queues what arrives meanwhile without bound (redis-rs' PUB/SUB stream
        // is an unbounded channel). Nothing is dropped, so the series stay at zero.
        e.family(
            "broker_redis_pub_sub_dropped_messages",
            "Number of dropped messages on application level in Redis PUB/SUB.",
            super::Kind::Counter,
        );
        for channel_type in ["client", "control"] {
            e.value(&[("broker_name", ""), ("channel_type", channel_type)], 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_keeps_centrifugo_names_labels_and_buckets() {
        let m = NodeMetrics::default();
        m.sent(Message::Publication);
        m.received(Message::Join);
        m.command(ClientMethod::Subscribe).observe(0.003);
        m.transport("websocket")
            .sent(FrameType::PushPublication, 7, 70);
        m.transport("websocket").ping_pong.observe(0.002);
        m.survey(SurveyOp::Channels).observe(0.003);
        m.pub_sub_delivered(1);
        m.connection("websocket", "js", "").accepted.inc();
        m.reply_error(ClientMethod::Publish, 103);
        m.recovered(true, 0);
        m.action(Action::AddClient);
        let mut out = String::new();
        m.write(&mut Exposition::new(&mut out, "centrifugo"));
        for line in [
            "# TYPE centrifugo_node_messages_sent_count counter\n",
            "centrifugo_node_messages_sent_count{type=\"publication\",channel_namespace=\"\"} 1\n",
            "centrifugo_node_messages_received_count{type=\"join\",channel_namespace=\"\"} 1\n",
            "centrifugo_node_action_count{action=\"add_client\",channel_namespace=\"\"} 1\n",
            "# TYPE centrifugo_client_command_duration_seconds summary\n",
            "# TYPE centrifugo_client_command_duration_seconds_histogram histogram\n",
            "centrifugo_client_command_duration_seconds_histogram_bucket{method=\"subscribe\",channel_namespace=\"\",le=\"0.001\"} 0\n",
            "centrifugo_client_command_duration_seconds_histogram_bucket{method=\"subscribe\",channel_namespace=\"\",le=\"0.005\"} 1\n",
            "centrifugo_client_command_duration_seconds_count{method=\"subscribe\",channel_namespace=\"\"} 1\n",
            "centrifugo_client_connections_accepted{transport=\"websocket\",accept_protocol=\"\",client_name=\"unregistered\",client_version=\"unversioned\"} 1\n",
            "centrifugo_client_num_reply_errors{method=\"publish\",code=\"103\",channel_namespace=\"\"} 1\n",
            "centrifugo_client_recover{recovered=\"yes\",channel_namespace=\"\",has_recovered_publications=\"no\"} 1\n",
            "centrifugo_transport_messages_sent{transport=\"websocket\",frame_type=\"push_publication\",channel_namespace=\"\"} 7\n",
            "centrifugo_transport_messages_sent_size{transport=\"websocket\",frame_type=\"push_publication\",channel_namespace=\"\"} 70\n",
            "centrifugo_client_ping_pong_duration_seconds_bucket{transport=\"websocket\",le=\"0.005\"} 1\n",
            "centrifugo_node_survey_duration_seconds{op=\"channels\",quantile=\"0.5\"} 0.003\n",
            "centrifugo_node_survey_duration_seconds_histogram_bucket{op=\"channels\",le=\"0.005\"} 1\n",
            "centrifugo_node_pub_sub_lag_seconds_bucket{channel_namespace=\"\",le=\"+Inf\"} 1\n",
            "centrifugo_client_command_duration_seconds{method=\"subscribe\",channel_namespace=\"\",quantile=\"0.99\"} 0.003\n",
            "# TYPE centrifugo_node_broadcast_duration_seconds histogram\n",
            "centrifugo_node_broadcast_duration_seconds_bucket{type=\"publication\",channel_namespace=\"\",le=\"1e-06\"} 0\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
        assert!(!out.contains("_total"));
    }

    #[test]
    fn client_names_are_bucketed_not_copied() {
        assert_eq!(client_labels("", ""), ("unnamed", "unversioned"));
        assert_eq!(
            client_labels("anything", "1.2.3"),
            ("unregistered", "unregistered")
        );
    }
}
