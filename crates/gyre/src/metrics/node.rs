//! The families a node keeps: Centrifugo's `node_*`, `client_*` and `transport_*`,
//! with their label sets. A label that Gyre has no value for (`channel_namespace`, which
//! Centrifugo fills only when configured to; `accept_protocol`; `frame_type`) is written
//! empty, which Prometheus reads as the label being absent, as Centrifugo's default does.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{BROADCAST_BUCKETS, COMMAND_BUCKETS, Counter, Exposition, Family, Gauge, Histogram};

/// Per-transport counters, held by each connection and its outbound queue.
#[derive(Debug, Default)]
pub(crate) struct TransportCounters {
    pub(crate) messages_sent: Counter,
    pub(crate) bytes_sent: Counter,
    pub(crate) messages_received: Counter,
    pub(crate) bytes_received: Counter,
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
    transports: RwLock<HashMap<&'static str, Arc<TransportCounters>>>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            messages_sent: Default::default(),
            messages_received: Default::default(),
            actions: Action::ALL.iter().map(|_| Counter::default()).collect(),
            broadcast_duration: Histogram::new(BROADCAST_BUCKETS),
            connections: Family::new(ConnectionStats::default),
            subscriptions: Default::default(),
            commands: ClientMethod::ALL
                .iter()
                .map(|_| Histogram::new(COMMAND_BUCKETS))
                .collect(),
            reply_errors: Family::new(Counter::default),
            server_unsubscribes: Family::new(Counter::default),
            server_disconnects: Family::new(Counter::default),
            outgoing_closes: Family::new(Counter::default),
            recover: Default::default(),
            transports: RwLock::new(HashMap::new()),
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

    pub(crate) fn recovered(&self, recovered: bool, has_publications: bool) {
        self.recover[usize::from(recovered)][usize::from(has_publications)].inc();
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
        type Pick = fn(&TransportCounters) -> u64;
        let picks: [(&str, &str, Pick); 4] = [
            (
                "transport_messages_sent",
                "Number of messages sent to client connections over specific transport.",
                |c| c.messages_sent.get(),
            ),
            (
                "transport_messages_sent_size",
                "Size in bytes of messages sent to client connections over specific transport.",
                |c| c.bytes_sent.get(),
            ),
            (
                "transport_messages_received",
                "Number of messages received from client connections over specific transport.",
                |c| c.messages_received.get(),
            ),
            (
                "transport_messages_received_size",
                "Size in bytes of messages received from client connections over specific transport.",
                |c| c.bytes_received.get(),
            ),
        ];
        for (name, help, pick) in picks {
            e.family(name, help, super::Kind::Counter);
            for (transport, c) in &transports {
                e.value(
                    &[
                        ("transport", transport),
                        ("frame_type", ""),
                        ("channel_namespace", ""),
                    ],
                    pick(c),
                );
            }
        }

        // Upstream registers these for every broker; Gyre's Redis subscriber has no
        // application-level buffer that could drop, so they stay at zero.
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
        m.transport("websocket").messages_sent.add(7);
        m.connection("websocket", "js", "").accepted.inc();
        m.reply_error(ClientMethod::Publish, 103);
        m.recovered(true, false);
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
            "centrifugo_transport_messages_sent{transport=\"websocket\",frame_type=\"\",channel_namespace=\"\"} 7\n",
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
