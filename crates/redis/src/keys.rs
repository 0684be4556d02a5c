//! Redis key and PUB/SUB channel names, as upstream centrifuge names them (FEATURES §11.1),
//! so a Gyre node and a Centrifugo node sharing one Redis read and write the same keys.

/// Builds every name from the configured prefix. In Redis Cluster the channel part is
/// wrapped in a hash tag (`{channel}`) so that all keys of one channel hash to one slot,
/// which the Lua scripts need (they touch stream, meta and result keys at once).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    cluster: bool,
    /// `<prefix>.client.`, kept to strip it from incoming PUB/SUB channel names.
    client_prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str, cluster: bool) -> Self {
        Keys {
            prefix: prefix.to_owned(),
            cluster,
            client_prefix: format!("{prefix}.client."),
        }
    }

    fn build(&self, infix: &str, channel: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + infix.len() + channel.len() + 2);
        s.push_str(&self.prefix);
        s.push_str(infix);
        if self.cluster {
            s.push('{');
            s.push_str(channel);
            s.push('}');
        } else {
            s.push_str(channel);
        }
        s
    }

    /// PUB/SUB channel carrying a channel's publications, joins and leaves.
    pub(crate) fn client_channel(&self, channel: &str) -> String {
        self.build(".client.", channel)
    }

    pub(crate) fn stream(&self, channel: &str) -> String {
        self.build(".stream.", channel)
    }

    pub(crate) fn stream_meta(&self, channel: &str) -> String {
        self.build(".stream.meta.", channel)
    }

    pub(crate) fn list(&self, channel: &str) -> String {
        self.build(".list.", channel)
    }

    pub(crate) fn list_meta(&self, channel: &str) -> String {
        self.build(".list.meta.", channel)
    }

    /// Idempotent publish result: `<p>.result.<channel>.<key>`.
    pub(crate) fn result(&self, channel: &str, idempotency_key: &str) -> String {
        let mut s = self.build(".result.", channel);
        s.push('.');
        s.push_str(idempotency_key);
        s
    }

    pub(crate) fn presence_data(&self, channel: &str) -> String {
        self.build(".presence.data.", channel)
    }

    pub(crate) fn presence_expire(&self, channel: &str) -> String {
        self.build(".presence.expire.", channel)
    }

    /// Broadcast control channel.
    pub(crate) fn control(&self) -> String {
        format!("{}.control", self.prefix)
    }

    /// Control channel of one node.
    pub(crate) fn node(&self, node_id: &str) -> String {
        format!("{}.node.{node_id}", self.prefix)
    }

    /// The Gyre channel of a `<p>.client.…` PUB/SUB channel, `None` for anything else.
    pub(crate) fn channel_of<'a>(&self, pubsub_channel: &'a str) -> Option<&'a str> {
        let rest = pubsub_channel.strip_prefix(&self.client_prefix)?;
        if self.cluster {
            rest.strip_prefix('{')?.strip_suffix('}')
        } else {
            Some(rest)
        }
    }
}

/// Key names of the map broker (upstream `map_broker_redis.go`): `<p>:meta:<ch>`,
/// `<p>:stream:<ch>`, `<p>:state:<ch>`, `<p>:state:expire:<ch>`, `<p>:state:order:<ch>`,
/// `<p>:state:meta:<ch>`, `<p>:cleanup:channels`, `<p>.result.<ch>.<key>` and the PUB/SUB
/// channel `<p>.client.<ch>`. Its prefix is set apart from the stream broker's
/// (`map_broker.redis.prefix`). Standalone form only: upstream's cluster form puts a
/// sharded-PUB/SUB partition tag in every name, which Gyre's map broker refuses for now.
#[derive(Debug, Clone)]
pub(crate) struct MapKeys {
    prefix: String,
}

impl MapKeys {
    pub(crate) fn new(prefix: &str) -> Self {
        MapKeys {
            prefix: prefix.to_owned(),
        }
    }

    fn build(&self, infix: &str, channel: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + infix.len() + channel.len());
        s.push_str(&self.prefix);
        s.push_str(infix);
        s.push_str(channel);
        s
    }

    /// HASH `e` (epoch), `s` (top offset).
    pub(crate) fn meta(&self, channel: &str) -> String {
        self.build(":meta:", channel)
    }

    /// STREAM of changes, entry id = offset, fields `e` and `d`.
    pub(crate) fn stream(&self, channel: &str) -> String {
        self.build(":stream:", channel)
    }

    /// HASH key → `<offset>:<epoch>:<protobuf Publication>`.
    pub(crate) fn state(&self, channel: &str) -> String {
        self.build(":state:", channel)
    }

    /// ZSET key → expire-at (unix ms).
    pub(crate) fn state_expire(&self, channel: &str) -> String {
        self.build(":state:expire:", channel)
    }

    /// ZSET key → score (ordered maps only).
    pub(crate) fn state_order(&self, channel: &str) -> String {
        self.build(":state:order:", channel)
    }

    /// HASH `epoch`, `updated_at`, `v:<key>`, `ve:<key>`.
    pub(crate) fn state_meta(&self, channel: &str) -> String {
        self.build(":state:meta:", channel)
    }

    /// ZSET channel → earliest key expiry (unix ms), shared by every map channel.
    pub(crate) fn cleanup(&self) -> String {
        format!("{}:cleanup:channels", self.prefix)
    }

    /// HASH `e`, `s` of an idempotent result.
    pub(crate) fn result(&self, channel: &str, idempotency_key: &str) -> String {
        let mut s = self.build(".result.", channel);
        s.push('.');
        s.push_str(idempotency_key);
        s
    }

    /// The stream broker's names (`<p>.client.<ch>` PUB/SUB channels) for this prefix.
    pub(crate) fn pubsub(&self) -> Keys {
        Keys::new(&self.prefix, false)
    }
}

/// 64-bit FNV-1a, the hash upstream feeds into jump hashing.
fn fnv1a64(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Jump consistent hash (Lamping & Veach) of `key` into `buckets`, computed exactly as
/// upstream `consistentIndex` so Go and Rust nodes pick the same Redis shard for a channel.
pub(crate) fn consistent_index(key: &str, buckets: usize) -> usize {
    if buckets <= 1 {
        return 0;
    }
    let mut k = fnv1a64(key.as_bytes());
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    let n = i64::try_from(buckets).unwrap_or(i64::MAX);
    while j < n {
        b = j;
        k = k.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // Float arithmetic is part of the algorithm; the result is always < buckets.
        j = ((b + 1) as f64 * ((1i64 << 31) as f64 / ((k >> 33) + 1) as f64)) as i64;
    }
    usize::try_from(b).unwrap_or(0)
}

/// Index of `key` among `n` PUB/SUB partitions of one shard. Deliberately not the jump
/// hash of the shard choice: the same function for both would put every channel of a
/// shard into the same partition whenever shard and partition counts are equal.
pub(crate) fn partition_index(key: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let h = fnv1a64(key.as_bytes()).rotate_left(29);
    // `n` fits in u64 and the remainder is below `n`, so both conversions are lossless.
    (h % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_names() {
        let k = Keys::new("centrifugo", false);
        assert_eq!(k.client_channel("news"), "centrifugo.client.news");
        assert_eq!(k.stream("news"), "centrifugo.stream.news");
        assert_eq!(k.stream_meta("news"), "centrifugo.stream.meta.news");
        assert_eq!(k.list("news"), "centrifugo.list.news");
        assert_eq!(k.list_meta("news"), "centrifugo.list.meta.news");
        assert_eq!(k.result("news", "k1"), "centrifugo.result.news.k1");
        assert_eq!(k.presence_data("news"), "centrifugo.presence.data.news");
        assert_eq!(k.presence_expire("news"), "centrifugo.presence.expire.news");
        assert_eq!(k.control(), "centrifugo.control");
        assert_eq!(k.node("n1"), "centrifugo.node.n1");
        assert_eq!(k.channel_of("centrifugo.client.a:b"), Some("a:b"));
        assert_eq!(k.channel_of("centrifugo.control"), None);
    }

    #[test]
    fn map_names() {
        let k = MapKeys::new("centrifugo");
        assert_eq!(k.meta("m:a"), "centrifugo:meta:m:a");
        assert_eq!(k.stream("m:a"), "centrifugo:stream:m:a");
        assert_eq!(k.state("m:a"), "centrifugo:state:m:a");
        assert_eq!(k.state_expire("m:a"), "centrifugo:state:expire:m:a");
        assert_eq!(k.state_order("m:a"), "centrifugo:state:order:m:a");
        assert_eq!(k.state_meta("m:a"), "centrifugo:state:meta:m:a");
        assert_eq!(k.cleanup(), "centrifugo:cleanup:channels");
        assert_eq!(k.result("m:a", "i1"), "centrifugo.result.m:a.i1");
        assert_eq!(k.pubsub().client_channel("m:a"), "centrifugo.client.m:a");
    }

    #[test]
    fn cluster_names_are_hash_tagged() {
        let k = Keys::new("p", true);
        assert_eq!(k.client_channel("news"), "p.client.{news}");
        assert_eq!(k.stream("news"), "p.stream.{news}");
        assert_eq!(k.stream_meta("news"), "p.stream.meta.{news}");
        assert_eq!(k.result("news", "k"), "p.result.{news}.k");
        assert_eq!(k.presence_expire("news"), "p.presence.expire.{news}");
        assert_eq!(k.channel_of("p.client.{news}"), Some("news"));
        assert_eq!(k.channel_of("p.client.news"), None);
    }

    #[test]
    fn jump_hash_matches_reference_values() {
        // FNV-1a 64 reference vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(consistent_index("anything", 1), 0);
        // Values of upstream's formula (FNV-1a 64 + jump, Go int64/float64 semantics)
        // computed independently with arbitrary-precision integers masked to 64 bits.
        for (key, buckets, want) in [
            ("news", 2, 1),
            ("news", 3, 2),
            ("chat:index", 4, 0),
            ("room17", 8, 1),
            ("a", 16, 12),
            ("", 5, 1),
        ] {
            assert_eq!(consistent_index(key, buckets), want, "{key} over {buckets}");
        }
        // Stable, in range, and moving to a new bucket only when one is added.
        let mut moved = 0;
        for i in 0..1000 {
            let ch = format!("channel{i}");
            let a = consistent_index(&ch, 2);
            let b = consistent_index(&ch, 3);
            assert!(a < 2 && b < 3);
            if a != b {
                assert_eq!(b, 2, "jump hash only moves keys to the new bucket");
                moved += 1;
            }
        }
        // About a third of the keys move to the third bucket.
        assert!((200..470).contains(&moved), "moved {moved}");
    }
}
