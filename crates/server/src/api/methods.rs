//! The methods of the server API, listed once.
//!
//! [`api_methods!`] is the only list of methods: one row per method with its name, its
//! enum variant, its number in upstream's legacy `Command_MethodType`, its request type
//! and its result type. The name is also the executor function's name
//! (`executor::<name>`), so a row cannot point at another method's code.
//!
//! ```text
//! name:       Variant      = legacy id,  request          => result;
//! publish:    Publish      = 0,          PublishRequest   => PublishResult;
//! ```
//!
//! The table does not expand to anything itself: `api_methods!(generator)` calls the macro
//! `generator!` with all the rows, and the generator writes the code that needs the whole
//! list. Here `json_api!` generates, for the HTTP API:
//!
//! * [`Method`]: the name at `/api/<name>` ([`Method::from_name`]), the legacy number
//!   ([`Method::from_legacy_id`]) and the decoding of the request object ([`Method::decode`]);
//! * [`Request`] and [`Outcome`]: one variant per method; an outcome serializes as its
//!   result and names its method in a batch reply ([`Outcome::name`]);
//! * [`Command`]: one command of `/api/batch` (`{"publish": {...}}`);
//! * [`execute`]: the dispatch to the executor function of each method.
//!
//! `batch` is not a row: it carries the other methods, it has no legacy number, and it is
//! served by `executor::batch` from `mod.rs`.
//!
//! The gRPC server API (upstream's `CentrifugoApi` service, `crate::grpc`) uses the same
//! table: it has its own generator, `api_methods!(grpc_service)`, whose rows give
//! each rpc's name (tonic's snake-case method name is the row's name) and the types to
//! convert the protobuf messages from and to, and calls the same `executor::<name>`
//! functions. A method added to the table then reaches both APIs, and the two cannot drift.
//! A generator resolves the row's types and `executor` where it expands, so its module
//! imports `super::proto::*` and `super::executor`.
//!
//! # Adding a method
//!
//! 1. `proto.rs`: the request struct (`Deserialize`, `Default`, Go-like decoding as the
//!    others) and the result struct (`Serialize`, `Clone`); methods that return nothing use
//!    [`Empty`].
//! 2. `executor.rs`: one function named as the method,
//!    `pub(crate) async fn name(app: &App, r: NameRequest) -> ApiResult<NameResult>`.
//! 3. Here: one row in [`api_methods!`]. Rows are in upstream's batch order (a batch
//!    command with several method fields runs the first row's), so put it where upstream's
//!    `processCmd` checks it.
//! 4. The pinned upstream list in this module's tests (and, for an upstream method that
//!    was not served yet, its line out of `NOT_SERVED` in `legacy.rs`).
//!
//! Nothing else changes: routing, batch, legacy and dispatch come from the row.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde::ser::{Serialize, Serializer};

use super::executor;
// The rows name request and result types by their short names.
use super::proto::*;
use crate::app::App;
use crate::metrics::ApiProtocol;

/// The server API's methods: `api_methods!(generator)` calls `generator!` with every row,
/// `name: Variant = legacy_id, Request => Result;`, in upstream's batch order.
macro_rules! api_methods {
    ($generate:ident) => {
        $generate! {
            publish:        Publish       = 0,  PublishRequest     => PublishResult;
            broadcast:      Broadcast     = 1,  BroadcastRequest   => BroadcastResult;
            subscribe:      Subscribe     = 11, SubscribeRequest   => Empty;
            unsubscribe:    Unsubscribe   = 2,  UnsubscribeRequest => Empty;
            disconnect:     Disconnect    = 3,  DisconnectRequest  => Empty;
            history:        History       = 6,  HistoryRequest     => HistoryResult;
            history_remove: HistoryRemove = 7,  ChannelRequest     => Empty;
            presence:       Presence      = 4,  ChannelRequest     => PresenceResult;
            presence_stats: PresenceStats = 5,  ChannelRequest     => PresenceStatsResult;
            info:           Info          = 9,  InfoRequest        => InfoResult;
            rpc:            Rpc           = 10, RpcRequest         => Empty;
            refresh:        Refresh       = 12, RefreshRequest     => Empty;
            channels:       Channels      = 8,  ChannelsRequest    => ChannelsResult;
            map_publish:     MapPublish    = 33, MapPublishRequest    => MapPublishResult;
            map_remove:      MapRemove     = 34, MapRemoveRequest     => MapPublishResult;
            map_read_state:  MapReadState  = 35, MapReadStateRequest  => MapReadStateResult;
            map_read_stream: MapReadStream = 36, MapReadStreamRequest => MapReadStreamResult;
            map_stats:       MapStats      = 37, ChannelRequest       => MapStatsResult;
            map_clear:       MapClear      = 38, ChannelRequest       => Empty;
            shared_poll_publish: SharedPollPublish = 39, SharedPollPublishRequest => Empty;
        }
    };
}
pub(crate) use api_methods;

/// Where a request object is read from: an HTTP body (`&[u8]`), a legacy command's params.
pub(crate) trait Source {
    /// Why a request object could not be read.
    type Error;

    /// Reads one request object.
    fn read<T: DeserializeOwned + Default>(self) -> Result<T, Self::Error>;
}

impl Source for &[u8] {
    type Error = serde_json::Error;

    fn read<T: DeserializeOwned + Default>(self) -> serde_json::Result<T> {
        serde_json::from_slice(self)
    }
}

/// The generator of the HTTP (JSON) API; see the module documentation.
macro_rules! json_api {
    ($($name:ident: $variant:ident = $legacy:literal, $request:ty => $result:ty;)*) => {
        /// A method served at `/api/<name>`, in batches and by the legacy endpoint.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Method {
            $($variant,)*
        }

        impl Method {
            /// Every method, in the table's order.
            pub(crate) const ALL: &[Method] = &[$(Method::$variant,)*];

            /// The name at `/api/<name>` and in batch commands and replies.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Method::$variant => stringify!($name),)*
                }
            }

            /// The method at `/api/<name>` (exact name; `batch` is handled separately).
            pub(crate) fn from_name(name: &str) -> Option<Method> {
                match name {
                    $(stringify!($name) => Some(Method::$variant),)*
                    _ => None,
                }
            }

            /// The number of this method in upstream's legacy `Command_MethodType`.
            pub(crate) fn legacy_id(self) -> i64 {
                match self {
                    $(Method::$variant => $legacy,)*
                }
            }

            /// The method with this legacy number.
            pub(crate) fn from_legacy_id(id: i64) -> Option<Method> {
                match id {
                    $($legacy => Some(Method::$variant),)*
                    _ => None,
                }
            }

            /// Reads this method's request object.
            pub(crate) fn decode<S: Source>(self, source: S) -> Result<Request, S::Error> {
                Ok(match self {
                    $(Method::$variant => Request::$variant(source.read::<$request>()?),)*
                })
            }
        }

        /// A decoded request of one method.
        #[derive(Debug)]
        pub(crate) enum Request {
            $($variant($request),)*
        }

        /// The result of one method call.
        #[derive(Debug, Clone)]
        pub(crate) enum Outcome {
            $($variant($result),)*
        }

        impl Outcome {
            /// The method that produced this result: the field of a batch reply.
            pub(crate) fn name(&self) -> &'static str {
                match self {
                    $(Outcome::$variant(_) => stringify!($name),)*
                }
            }
        }

        impl Serialize for Outcome {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Outcome::$variant(result) => result.serialize(s),)*
                }
            }
        }

        /// One command of a batch: the first method field set wins (the table's order is
        /// upstream's `processCmd` order).
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        pub(crate) struct Command {
            $(pub(crate) $name: Option<$request>,)*
        }

        impl Command {
            /// The request this command carries, `None` when it names no supported method.
            pub(crate) fn into_request(self) -> Option<Request> {
                $(if let Some(request) = self.$name {
                    return Some(Request::$variant(request));
                })*
                None
            }
        }

        impl Request {
            /// The method this request is for.
            pub(crate) fn method(&self) -> Method {
                match self {
                    $(Request::$variant(_) => Method::$variant,)*
                }
            }
        }

        /// Runs one request with its method's executor function, counted in the API
        /// metrics of `protocol`.
        pub(crate) async fn execute(
            app: &App,
            request: Request,
            protocol: ApiProtocol,
        ) -> Result<Outcome, ApiError> {
            let method = request.method();
            let started = std::time::Instant::now();
            let outcome = match request {
                $(Request::$variant(request) => {
                    executor::$name(app, request).await.map(Outcome::$variant)
                })*
            };
            app.api_metrics
                .observe(protocol, method, started, outcome.as_ref().err());
            outcome
        }
    };
}

api_methods!(json_api);

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Upstream's methods (Centrifugo OSS `apiproto`) with their legacy numbers, in the
    /// order `processCmd` checks a batch command's fields. Pinned here so that a dropped or
    /// mistyped row fails.
    const UPSTREAM: &[(&str, i64)] = &[
        ("publish", 0),
        ("broadcast", 1),
        ("subscribe", 11),
        ("unsubscribe", 2),
        ("disconnect", 3),
        ("history", 6),
        ("history_remove", 7),
        ("presence", 4),
        ("presence_stats", 5),
        ("info", 9),
        ("rpc", 10),
        ("refresh", 12),
        ("channels", 8),
        ("map_publish", 33),
        ("map_remove", 34),
        ("map_read_state", 35),
        ("map_read_stream", 36),
        ("map_stats", 37),
        ("map_clear", 38),
        ("shared_poll_publish", 39),
    ];

    #[test]
    fn batch_command_picks_the_first_method_in_upstream_order() {
        let c: Command =
            serde_json::from_str(r#"{"history":{"channel":"h"},"publish":{"channel":"p"}}"#)
                .unwrap();
        assert!(matches!(c.into_request(), Some(Request::Publish(p)) if p.channel == "p"));
        let c: Command = serde_json::from_str(r#"{"connections":{}}"#).unwrap();
        assert!(c.into_request().is_none());
    }

    #[test]
    fn the_table_is_upstreams_list() {
        let table: Vec<_> = Method::ALL
            .iter()
            .map(|m| (m.name(), m.legacy_id()))
            .collect();
        assert_eq!(table, UPSTREAM);
    }

    #[test]
    fn names_and_legacy_ids_map_back_to_their_method() {
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for &method in Method::ALL {
            assert!(names.insert(method.name()), "{method:?}");
            assert!(ids.insert(method.legacy_id()), "{method:?}");
            assert_eq!(Method::from_name(method.name()), Some(method));
            assert_eq!(Method::from_legacy_id(method.legacy_id()), Some(method));
        }
        assert_eq!(Method::from_name("batch"), None);
        assert_eq!(Method::from_name("Publish"), None);
        assert_eq!(Method::from_legacy_id(13), None);
    }

    #[test]
    fn every_method_decodes_from_a_body_and_a_batch_command() {
        // Each method's request object from `{}` in all three forms, and the variant of
        // the request matches the method it was decoded for.
        for &method in Method::ALL {
            let request = method.decode(&b"{}"[..]).unwrap();
            let json = format!(r#"{{"{}": {{}}}}"#, method.name());
            let command: Command = serde_json::from_str(&json).unwrap();
            let from_batch = command.into_request().unwrap();
            assert_eq!(
                format!("{request:?}"),
                format!("{from_batch:?}"),
                "{method:?}"
            );
            assert!(
                format!("{request:?}").starts_with(&format!("{method:?}(")),
                "{method:?}: {request:?}"
            );
        }
    }
}
