//! Proxies as a node's handlers, for applications built on the library without the
//! server: the backend decides every event, as in a Centrifugo setup with proxies.

use std::sync::Arc;

use gyre::{
    ClientHandlers, ConnectReply, MapChannelOptions, MapPublishOptions, MapPublishReply, Node,
    PublishOptions, PublishReply, SubscribeOptions, SubscribeReply,
};

use crate::context::{CallContext, Contexts};
use crate::events::Caller;
use crate::transport::Proxy;

/// Which proxy decides which event.
///
/// An event without a proxy keeps the library's answer (see [`gyre::Client`]). With a
/// connect proxy every connection is decided by the backend; a connection that brings a
/// token is refused (3501), since verifying tokens is the application's part. Subscribe
/// options start from `subscribe_options` and publications from `publish_options`; the
/// backend's answer is applied on top.
///
/// ```
/// use gyre::Node;
/// use gyre_proxy::{Proxy, ProxyConfig, ProxyHandlers};
///
/// let backend = Proxy::new(ProxyConfig::new("http://127.0.0.1:3000/centrifugo")).unwrap();
/// let node = Node::builder().build();
/// ProxyHandlers::new()
///     .connect(backend.clone())
///     .subscribe(backend.clone())
///     .publish(backend.clone())
///     .rpc(backend)
///     .install(&node);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProxyHandlers {
    connect: Option<Proxy>,
    refresh: Option<Proxy>,
    subscribe: Option<Proxy>,
    publish: Option<Proxy>,
    sub_refresh: Option<Proxy>,
    rpc: Option<Proxy>,
    map_publish: Option<Proxy>,
    map_remove: Option<Proxy>,
    subscribe_options: SubscribeOptions,
    publish_options: PublishOptions,
    map_options: MapChannelOptions,
}

impl ProxyHandlers {
    /// No proxies yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connections without a token ask this proxy who they are.
    pub fn connect(mut self, proxy: Proxy) -> Self {
        self.connect = Some(proxy);
        self
    }

    /// Expiring connections are extended by this proxy (server-side refresh).
    pub fn refresh(mut self, proxy: Proxy) -> Self {
        self.refresh = Some(proxy);
        self
    }

    /// Subscriptions are decided by this proxy.
    pub fn subscribe(mut self, proxy: Proxy) -> Self {
        self.subscribe = Some(proxy);
        self
    }

    /// Client publications are decided by this proxy.
    pub fn publish(mut self, proxy: Proxy) -> Self {
        self.publish = Some(proxy);
        self
    }

    /// Expiring subscriptions are extended by this proxy (server-side refresh).
    pub fn sub_refresh(mut self, proxy: Proxy) -> Self {
        self.sub_refresh = Some(proxy);
        self
    }

    /// RPC calls are answered by this proxy.
    pub fn rpc(mut self, proxy: Proxy) -> Self {
        self.rpc = Some(proxy);
        self
    }

    /// Client map publications (`publish` with `type` 1) are decided by this proxy.
    pub fn map_publish(mut self, proxy: Proxy) -> Self {
        self.map_publish = Some(proxy);
        self
    }

    /// Client map removals are decided by this proxy. With only one of the two map
    /// proxies, the other change is refused with 108 (not available).
    pub fn map_remove(mut self, proxy: Proxy) -> Self {
        self.map_remove = Some(proxy);
        self
    }

    /// The map options of the channels clients change through the map proxies.
    pub fn map_options(mut self, options: MapChannelOptions) -> Self {
        self.map_options = options;
        self
    }

    /// Options every granted subscription starts from.
    pub fn subscribe_options(mut self, options: SubscribeOptions) -> Self {
        self.subscribe_options = options;
        self
    }

    /// Options every allowed client publication starts from (history, …).
    pub fn publish_options(mut self, options: PublishOptions) -> Self {
        self.publish_options = options;
        self
    }

    fn proxies(&self) -> impl Iterator<Item = &Proxy> {
        [
            &self.connect,
            &self.refresh,
            &self.subscribe,
            &self.publish,
            &self.sub_refresh,
            &self.rpc,
            &self.map_publish,
            &self.map_remove,
        ]
        .into_iter()
        .flatten()
    }

    /// Registers the node's `on_connecting` and `on_connect` handlers.
    pub fn install(self, node: &Node) {
        let this = Arc::new(self);
        let contexts = Arc::new(Contexts::default());
        let mut forwarded: Vec<String> = Vec::new();
        let mut emulated: Vec<String> = Vec::new();
        for p in this.proxies() {
            forwarded.extend(p.config().http_headers.iter().cloned());
            emulated.extend(p.config().emulated_headers.iter().cloned());
        }
        let (forwarded, emulated) = (Arc::new(forwarded), Arc::new(emulated));

        let (h, c) = (this.clone(), contexts.clone());
        node.on_connecting(move |event| {
            let (h, c, forwarded, emulated) =
                (h.clone(), c.clone(), forwarded.clone(), emulated.clone());
            async move {
                let context = CallContext::from_connect(&event, &forwarded, &emulated);
                let Some(proxy) = h.connect.as_ref().filter(|_| event.token.is_empty()) else {
                    return Err(gyre::Disconnect::BAD_REQUEST.into());
                };
                let answer = proxy.connect(&event, &context).await?;
                let mut reply = ConnectReply::new(answer.credentials)
                    .data(answer.data)
                    .client_side_refresh(h.refresh.is_none());
                for channel in answer.channels {
                    reply = reply.subscribe(channel, h.subscribe_options.clone());
                }
                for (channel, grant) in answer.subs {
                    let mut options = h.subscribe_options.clone();
                    grant.apply(&mut options);
                    reply = reply.subscribe(channel, options);
                }
                c.insert(&event.client_id, context.with_meta(answer.meta));
                Ok(reply)
            }
        });

        let handlers = Arc::new(this.client_handlers(&contexts));
        node.on_connect(move |client| {
            contexts.confirm(client.id());
            client.set_handlers(handlers.clone());
        });
    }

    fn client_handlers(self: &Arc<Self>, contexts: &Arc<Contexts>) -> ClientHandlers {
        let mut handlers = ClientHandlers::new();
        if let Some(proxy) = self.subscribe.clone() {
            let (h, c) = (self.clone(), contexts.clone());
            handlers = handlers.on_subscribe(move |client, event| {
                let (h, c, proxy) = (h.clone(), c.clone(), proxy.clone());
                async move {
                    let grant = proxy
                        .subscribe(&Caller::from(&client), &event, &c.get(client.id()))
                        .await?;
                    let mut options = h.subscribe_options.clone();
                    grant.apply(&mut options);
                    options.client_side_refresh = h.sub_refresh.is_none();
                    Ok(SubscribeReply::new(options))
                }
            });
        }
        if let Some(proxy) = self.publish.clone() {
            let (h, c) = (self.clone(), contexts.clone());
            handlers = handlers.on_publish(move |client, event| {
                let (h, c, proxy) = (h.clone(), c.clone(), proxy.clone());
                async move {
                    let answer = proxy
                        .publish(&Caller::from(&client), &event, &c.get(client.id()))
                        .await?;
                    let mut reply = PublishReply::new(h.publish_options.clone());
                    answer.apply(&mut reply);
                    Ok(reply)
                }
            });
        }
        if self.map_publish.is_some() || self.map_remove.is_some() {
            let (h, c) = (self.clone(), contexts.clone());
            handlers = handlers.on_map_publish(move |client, event| {
                let (h, c) = (h.clone(), c.clone());
                async move {
                    let proxy = if event.removed {
                        &h.map_remove
                    } else {
                        &h.map_publish
                    };
                    let Some(proxy) = proxy else {
                        return Err(gyre::Error::NOT_AVAILABLE.into());
                    };
                    let (caller, context) = (Caller::from(&client), c.get(client.id()));
                    let answer = if event.removed {
                        proxy.map_remove(&caller, &event, &context).await?
                    } else {
                        proxy.map_publish(&caller, &event, &context).await?
                    };
                    let options = MapPublishOptions::new(h.map_options.clone());
                    let mut reply = MapPublishReply::new(event.key.clone(), options);
                    answer.apply(&mut reply);
                    Ok(reply)
                }
            });
        }
        if let Some(proxy) = self.rpc.clone() {
            let c = contexts.clone();
            handlers = handlers.on_rpc(move |client, event| {
                let (c, proxy) = (c.clone(), proxy.clone());
                async move {
                    proxy
                        .rpc(&Caller::from(&client), &event, &c.get(client.id()))
                        .await
                }
            });
        }
        if let Some(proxy) = self.sub_refresh.clone() {
            let c = contexts.clone();
            handlers = handlers.on_sub_refresh(move |client, event| {
                let (c, proxy) = (c.clone(), proxy.clone());
                async move {
                    proxy
                        .sub_refresh(&Caller::from(&client), &event, &c.get(client.id()))
                        .await
                }
            });
        }
        if let Some(proxy) = self.refresh.clone() {
            let c = contexts.clone();
            handlers = handlers.on_refresh(move |client, _event| {
                let (c, proxy) = (c.clone(), proxy.clone());
                async move {
                    let answer = proxy
                        .refresh(&Caller::from(&client), &c.get(client.id()))
                        .await;
                    if let Some(meta) = answer.meta {
                        c.set_meta(client.id(), meta);
                    }
                    Ok(answer.reply)
                }
            });
        }
        let c = contexts.clone();
        handlers.on_disconnect(move |client, _| c.remove(client.id()))
    }
}
