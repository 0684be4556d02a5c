//! Names of the map broker's database objects and the statements it runs, built once
//! from the table prefix and the data variant.

/// Object names for a prefix; the names of the variant in use, plus both variants'
/// prefixes (the schema set-up creates both, as upstream does).
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// `<prefix>_map_`, the JSONB variant.
    pub(crate) jsonb_prefix: String,
    /// `<prefix>_binary_map_`, the BYTEA variant.
    pub(crate) binary_prefix: String,
    /// The prefix in use.
    pub(crate) prefix: String,
    pub(crate) stream: String,
    pub(crate) state: String,
    pub(crate) meta: String,
    pub(crate) idempotency: String,
    pub(crate) shard_lock: String,
    pub(crate) schema_version: String,
    /// `NOTIFY` channel of new stream rows.
    pub(crate) notify_channel: String,
}

impl Names {
    pub(crate) fn new(table_prefix: &str, binary: bool) -> Self {
        let jsonb_prefix = format!("{table_prefix}_map_");
        let binary_prefix = format!("{table_prefix}_binary_map_");
        let prefix = if binary {
            binary_prefix.clone()
        } else {
            jsonb_prefix.clone()
        };
        Names {
            stream: format!("{prefix}stream"),
            state: format!("{prefix}state"),
            meta: format!("{prefix}meta"),
            idempotency: format!("{prefix}idempotency"),
            shard_lock: format!("{prefix}shard_lock"),
            schema_version: format!("{prefix}schema_version"),
            notify_channel: format!("{prefix}stream_notify"),
            jsonb_prefix,
            binary_prefix,
            prefix,
        }
    }
}

/// The statements, with the data columns read and written in the variant's type: JSONB
/// travels as text (cast on both sides), BYTEA as bytes.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub(crate) publish: String,
    pub(crate) remove: String,
    pub(crate) broadcast: String,
    pub(crate) position: String,
    pub(crate) drop_dead_meta: String,
    pub(crate) create_meta: String,
    pub(crate) state_page: String,
    pub(crate) state_key: String,
    pub(crate) stream_forward: String,
    pub(crate) stream_reverse: String,
    pub(crate) stats: String,
    pub(crate) clear: [String; 4],
    pub(crate) outbox: String,
    pub(crate) max_id: String,
    pub(crate) expired_channels: String,
    pub(crate) expire: String,
    pub(crate) cleanup_meta: String,
    pub(crate) cleanup_idempotency: String,
}

/// Columns of a state entry, after the channel's `top_offset, epoch`.
const STATE_COLUMNS: &str = "s.key, {data}, s.tags::text, s.key_offset, s.client_id, s.user_id, \
     {conn}, {chan}, (extract(epoch FROM s.updated_at) * 1000)::bigint";
/// Columns of a stream row, after the channel's `top_offset, epoch`.
const STREAM_COLUMNS: &str = "s.key, {data}, s.tags::text, s.channel_offset, s.removed, \
     s.client_id, s.user_id, {conn}, {chan}, (extract(epoch FROM s.created_at) * 1000)::bigint";

impl Statements {
    pub(crate) fn new(n: &Names, binary: bool) -> Self {
        // How a data value is passed (parameter `$i`) and read (column `c`).
        let param = |i: usize| {
            if binary {
                format!("${i}::bytea")
            } else {
                format!("${i}::text::jsonb")
            }
        };
        let column = |c: &str| {
            if binary {
                c.to_owned()
            } else {
                format!("{c}::text")
            }
        };
        let columns = |template: &str| {
            template
                .replace("{data}", &column("s.data"))
                .replace("{conn}", &column("s.conn_info"))
                .replace("{chan}", &column("s.chan_info"))
        };
        let state_columns = columns(STATE_COLUMNS);
        let stream_columns = columns(STREAM_COLUMNS);
        let (p, stream, state, meta, idem) =
            (&n.prefix, &n.stream, &n.state, &n.meta, &n.idempotency);
        // A channel past its meta TTL reads as missing (the cleanup deletes it later).
        let live = "(m.expires_at IS NULL OR m.expires_at > now())";
        let result_columns = format!(
            "result_id, channel_offset, epoch, suppressed, suppress_reason, {}, current_offset",
            column("current_data")
        );
        Statements {
            publish: format!(
                "SELECT {result_columns} FROM {p}publish($1::text, $2::text, {d3}, \
                 $4::text::jsonb, $5::text::interval, $6::text::interval, $7::text, \
                 $8::bigint, $9::text, $10::bigint, $11::text, $12::text, $13::text::interval, \
                 false, $14::text, $15::text, {d16}, {d17}, $18::bool, $19::int)",
                d3 = param(3),
                d16 = param(16),
                d17 = param(17),
            ),
            remove: format!(
                "SELECT {result_columns} FROM {p}remove($1::text, $2::text, $3::text::interval, \
                 $4::bigint, $5::text, $6::text, $7::text::interval, $8::text, $9::text, $10::int)"
            ),
            // A keyless publish into a channel without a stream only fans out: a stream row
            // at offset 0 outside every epoch (no reader ever sees it), written under the
            // shard lock like every row so that pollers miss none.
            broadcast: format!(
                "WITH locked AS (SELECT l.shard_id FROM {p}shard_lock l \
                   WHERE l.shard_id = abs(hashtext($1::text)::bigint) % $2::int FOR UPDATE), \
                 added AS (INSERT INTO {stream} (channel, channel_offset, epoch, key, data, tags, \
                   client_id, user_id, conn_info, chan_info, shard_id) \
                   SELECT $1::text, 0, '', '', {d3}, $4::text::jsonb, $5::text, $6::text, {d7}, {d8}, \
                   locked.shard_id FROM locked RETURNING id) \
                 SELECT pg_notify('{notify}', '') FROM added",
                d3 = param(3),
                d7 = param(7),
                d8 = param(8),
                notify = n.notify_channel,
            ),
            position: format!(
                "SELECT top_offset, epoch FROM {meta} m WHERE m.channel = $1::text AND {live}"
            ),
            drop_dead_meta: format!(
                "DELETE FROM {meta} WHERE channel = $1::text AND expires_at <= now()"
            ),
            // Reading a channel that has no meta starts it, as writing would: a new epoch,
            // and no keys left from an earlier one.
            create_meta: format!(
                "WITH created AS (INSERT INTO {meta} (channel, top_offset, epoch, updated_at, expires_at) \
                   VALUES ($1::text, 0, left(md5(random()::text || clock_timestamp()::text), 8), now(), \
                           now() + $2::text::interval) \
                   ON CONFLICT (channel) DO NOTHING RETURNING channel), \
                 wiped AS (DELETE FROM {idem} i USING created c WHERE i.channel = c.channel) \
                 DELETE FROM {state} s USING created c WHERE s.channel = c.channel"
            ),
            // One statement, so the position and the page come from one snapshot.
            state_page: format!(
                "SELECT m.top_offset, m.epoch, {state_columns} FROM {meta} m \
                 LEFT JOIN LATERAL (SELECT * FROM {state} x WHERE x.channel = m.channel \
                   AND x.key > $2::text ORDER BY x.key LIMIT $3::bigint) s ON TRUE \
                 WHERE m.channel = $1::text AND {live} ORDER BY s.key"
            ),
            state_key: format!(
                "SELECT m.top_offset, m.epoch, {state_columns} FROM {meta} m \
                 LEFT JOIN {state} s ON s.channel = m.channel AND s.key = $2::text \
                 WHERE m.channel = $1::text AND {live}"
            ),
            // Rows of earlier epochs stay until their partition is dropped: skipped.
            stream_forward: format!(
                "SELECT m.top_offset, m.epoch, {stream_columns} FROM {meta} m \
                 LEFT JOIN LATERAL (SELECT * FROM {stream} x WHERE x.channel = m.channel \
                   AND x.epoch = m.epoch AND x.channel_offset > $2::bigint \
                   ORDER BY x.channel_offset LIMIT $3::bigint) s ON TRUE \
                 WHERE m.channel = $1::text AND {live} ORDER BY s.channel_offset"
            ),
            stream_reverse: format!(
                "SELECT m.top_offset, m.epoch, {stream_columns} FROM {meta} m \
                 LEFT JOIN LATERAL (SELECT * FROM {stream} x WHERE x.channel = m.channel \
                   AND x.epoch = m.epoch AND x.channel_offset < $2::bigint \
                   ORDER BY x.channel_offset DESC LIMIT $3::bigint) s ON TRUE \
                 WHERE m.channel = $1::text AND {live} ORDER BY s.channel_offset DESC"
            ),
            stats: format!("SELECT count(*) FROM {state} WHERE channel = $1::text"),
            clear: [stream, state, meta, idem]
                .map(|t| format!("DELETE FROM {t} WHERE channel = $1::text")),
            outbox: format!(
                "SELECT s.id, s.channel, s.epoch, {stream_columns} FROM {stream} s \
                 WHERE s.shard_id = $1::smallint AND s.id > $2::bigint ORDER BY s.id LIMIT $3::bigint"
            ),
            max_id: format!("SELECT COALESCE(max(id), 0)::bigint FROM {stream}"),
            expired_channels: format!(
                "SELECT DISTINCT channel FROM {state} \
                 WHERE expires_at IS NOT NULL AND expires_at <= now() LIMIT 100"
            ),
            expire: format!(
                "SELECT out_channel, out_key, out_offset, out_epoch \
                 FROM {p}expire_keys($1::int, $2::int, NULL, $3::text)"
            ),
            // The outer condition is checked again on rows a concurrent publish just
            // extended, which are then kept.
            cleanup_meta: format!(
                "DELETE FROM {meta} m WHERE m.channel IN (SELECT channel FROM {meta} \
                   WHERE expires_at IS NOT NULL AND expires_at < now() LIMIT $1::bigint) \
                 AND m.expires_at < now()"
            ),
            cleanup_idempotency: format!(
                "DELETE FROM {idem} i WHERE (i.channel, i.idempotency_key) IN \
                   (SELECT channel, idempotency_key FROM {idem} WHERE expires_at < now() \
                    LIMIT $1::bigint) \
                 AND i.expires_at < now()"
            ),
        }
    }
}
