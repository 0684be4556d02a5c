//! The stream broker's tables and functions.
//!
//! Names, columns and function signatures are Centrifugo's (`internal/pgstreambroker`),
//! so that Gyre and Centrifugo nodes can share one database: `<prefix>_stream` (JSONB
//! payloads) and `<prefix>_binary_stream` (BYTEA), each with `_meta`, `_idempotency`,
//! `_shard_lock`, `_schema_version` and the functions `_publish`, `_publish_strict`,
//! `_publish_join`, `_publish_leave`, `_remove_history`, `_top_position`. Both variants
//! are always created.
//!
//! Gyre's additions, compatible with upstream callers: a `use_delta` column (the delta
//! flag travels with the publication), expired meta treated as absent at publish time
//! (a new epoch from offset 1), and publications without history (no size or no TTL)
//! stored with offset 0 and no epoch, outside any stream, as delivery-only rows.

use crate::pg::NEW_EPOCH_SQL;

/// Upstream's schema version of these tables.
const SCHEMA_VERSION: i32 = 1;

/// Tokens: `__T__` the stream table, `__P__` the prefix of everything else (`__T___`),
/// `__D__` the payload type, `__EPOCH__` a new epoch.
const TEMPLATE: &str = r#"
CREATE TABLE IF NOT EXISTS __T__ (
    id              BIGSERIAL,
    channel         TEXT NOT NULL,
    channel_offset  BIGINT NOT NULL,
    epoch           TEXT NOT NULL DEFAULT '',
    kind            SMALLINT NOT NULL DEFAULT 0,
    data            __D__,
    tags            JSONB,
    client_id       TEXT,
    user_id         TEXT,
    conn_info       __D__,
    chan_info       __D__,
    prev_data       __D__,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    shard_id        SMALLINT NOT NULL DEFAULT 0,
    use_delta       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
-- A table created by Centrifugo lacks Gyre's column.
ALTER TABLE __T__ ADD COLUMN IF NOT EXISTS use_delta BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX IF NOT EXISTS __T___channel_epoch_offset_idx
    ON __T__ (channel, epoch, channel_offset) WHERE kind = 0;
CREATE INDEX IF NOT EXISTS __T___shard_id_idx ON __T__ (shard_id, id);
CREATE INDEX IF NOT EXISTS __T___created_at_idx ON __T__ (created_at);

CREATE TABLE IF NOT EXISTS __P__meta (
    channel            TEXT PRIMARY KEY,
    top_offset         BIGINT NOT NULL DEFAULT 0,
    epoch              TEXT NOT NULL DEFAULT '',
    history_ttl        INTERVAL NOT NULL DEFAULT interval '1 minute',
    history_size       INTEGER NOT NULL DEFAULT 100,
    top_version        BIGINT NOT NULL DEFAULT 0,
    top_version_epoch  TEXT NOT NULL DEFAULT '',
    expires_at         TIMESTAMPTZ NOT NULL DEFAULT NOW() + interval '7 days',
    created_at         TIMESTAMPTZ DEFAULT NOW(),
    updated_at         TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS __P__meta_expires_idx ON __P__meta (expires_at);

CREATE TABLE IF NOT EXISTS __P__idempotency (
    channel         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    result_offset   BIGINT NOT NULL,
    result_epoch    TEXT NOT NULL,
    result_id       BIGINT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, idempotency_key)
);
CREATE INDEX IF NOT EXISTS __P__idempotency_expires_idx ON __P__idempotency (expires_at);

CREATE TABLE IF NOT EXISTS __P__shard_lock (shard_id SMALLINT PRIMARY KEY);

CREATE TABLE IF NOT EXISTS __P__schema_version (
    id              INTEGER PRIMARY KEY,
    schema_version  INTEGER NOT NULL
);
INSERT INTO __P__schema_version (id, schema_version) VALUES (1, __VERSION__)
    ON CONFLICT (id) DO NOTHING;

-- The shard of a channel; its shard_lock row orders every insert of the shard, so ids
-- of one shard become visible in id order (what the pollers' cursors rely on).
CREATE OR REPLACE FUNCTION __P__lock_shard(p_channel TEXT, p_num_shards INTEGER)
RETURNS INTEGER AS $body$
DECLARE
    shards INTEGER := p_num_shards;
    shard INTEGER;
BEGIN
    IF shards IS NULL OR shards <= 0 THEN
        SELECT count(*)::INTEGER INTO shards FROM __P__shard_lock;
        IF shards = 0 THEN
            RAISE EXCEPTION '__P__shard_lock is empty: the schema was not initialized';
        END IF;
    END IF;
    shard := (abs(hashtext(p_channel)::BIGINT) % shards)::INTEGER;
    PERFORM 1 FROM __P__shard_lock WHERE shard_id = shard FOR UPDATE;
    RETURN shard;
END;
$body$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION __P__publish(
    p_channel TEXT,
    p_data __D__,
    p_tags JSONB DEFAULT NULL,
    p_history_ttl INTERVAL DEFAULT NULL,
    p_history_size INTEGER DEFAULT NULL,
    p_meta_ttl INTERVAL DEFAULT NULL,
    p_version BIGINT DEFAULT NULL,
    p_version_epoch TEXT DEFAULT NULL,
    p_idempotency_key TEXT DEFAULT NULL,
    p_idempotency_ttl INTERVAL DEFAULT NULL,
    p_use_delta BOOLEAN DEFAULT FALSE,
    p_client_id TEXT DEFAULT NULL,
    p_user_id TEXT DEFAULT NULL,
    p_conn_info __D__ DEFAULT NULL,
    p_chan_info __D__ DEFAULT NULL,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS TABLE(
    out_result_id BIGINT,
    out_channel_offset BIGINT,
    out_epoch TEXT,
    out_suppressed BOOLEAN,
    out_suppress_reason TEXT
) AS $body$
DECLARE
    shard INTEGER;
    keeps BOOLEAN := COALESCE(p_history_size, 0) > 0
        AND COALESCE(p_history_ttl, interval '0') > interval '0';
    meta_ttl INTERVAL;
    cur RECORD;
    seen RECORD;
    new_offset BIGINT := 0;
    new_epoch TEXT := '';
    prev __D__;
    row_id BIGINT;
BEGIN
    shard := __P__lock_shard(p_channel, p_num_shards);

    IF p_idempotency_key IS NOT NULL THEN
        SELECT result_offset, result_epoch INTO seen
          FROM __P__idempotency
         WHERE channel = p_channel AND idempotency_key = p_idempotency_key
           AND expires_at > now();
        IF FOUND THEN
            RETURN QUERY SELECT NULL::BIGINT, seen.result_offset, seen.result_epoch,
                TRUE, 'idempotency'::TEXT;
            RETURN;
        END IF;
    END IF;

    IF keeps THEN
        -- The meta outlives the history; a negative meta TTL keeps it for ever.
        IF p_meta_ttl IS NOT NULL AND p_meta_ttl < interval '0' THEN
            meta_ttl := NULL;
        ELSE
            meta_ttl := GREATEST(COALESCE(p_meta_ttl, interval '0'), p_history_ttl);
        END IF;
        -- Lock (or create) the meta row. An expired one is a forgotten stream even
        -- before the cleanup deletes it: a new epoch from offset 0.
        INSERT INTO __P__meta AS m (channel, top_offset, epoch, expires_at, updated_at)
        VALUES (p_channel, 0, __EPOCH__, COALESCE(now() + meta_ttl, 'infinity'), now())
        ON CONFLICT (channel) DO UPDATE SET
            top_offset = CASE WHEN m.expires_at <= now() THEN 0 ELSE m.top_offset END,
            epoch = CASE WHEN m.expires_at <= now() THEN EXCLUDED.epoch ELSE m.epoch END,
            top_version = CASE WHEN m.expires_at <= now() THEN 0 ELSE m.top_version END,
            top_version_epoch = CASE WHEN m.expires_at <= now() THEN ''
                                     ELSE m.top_version_epoch END,
            updated_at = now()
        RETURNING m.top_offset, m.epoch, m.top_version, m.top_version_epoch INTO cur;

        IF COALESCE(p_version, 0) > 0 AND cur.top_version > 0
           AND (COALESCE(p_version_epoch, '') = '' OR p_version_epoch = cur.top_version_epoch)
           AND p_version <= cur.top_version THEN
            RETURN QUERY SELECT NULL::BIGINT, cur.top_offset, cur.epoch, TRUE, 'version'::TEXT;
            RETURN;
        END IF;

        IF p_use_delta THEN
            SELECT s.data INTO prev FROM __T__ s
             WHERE s.channel = p_channel AND s.epoch = cur.epoch AND s.kind = 0
               AND s.channel_offset = cur.top_offset;
        END IF;

        UPDATE __P__meta SET
            top_offset = top_offset + 1,
            history_ttl = p_history_ttl,
            history_size = p_history_size,
            top_version = CASE WHEN COALESCE(p_version, 0) > 0 THEN p_version
                               ELSE top_version END,
            top_version_epoch = CASE
                WHEN COALESCE(p_version, 0) > 0 AND COALESCE(p_version_epoch, '') <> ''
                    THEN p_version_epoch
                ELSE top_version_epoch END,
            expires_at = COALESCE(now() + meta_ttl, 'infinity'),
            updated_at = now()
         WHERE channel = p_channel
        RETURNING top_offset, epoch INTO new_offset, new_epoch;
    END IF;

    INSERT INTO __T__ (channel, channel_offset, epoch, kind, data, tags, client_id, user_id,
                       conn_info, chan_info, prev_data, shard_id, use_delta)
    VALUES (p_channel, new_offset, new_epoch, 0, p_data, p_tags, p_client_id, p_user_id,
            p_conn_info, p_chan_info, prev, shard, COALESCE(p_use_delta, FALSE))
    RETURNING id INTO row_id;

    IF p_idempotency_key IS NOT NULL THEN
        INSERT INTO __P__idempotency AS i
            (channel, idempotency_key, result_offset, result_epoch, result_id, expires_at)
        VALUES (p_channel, p_idempotency_key, new_offset, new_epoch, row_id,
                now() + COALESCE(p_idempotency_ttl, interval '5 minutes'))
        ON CONFLICT (channel, idempotency_key) DO UPDATE SET
            result_offset = EXCLUDED.result_offset,
            result_epoch = EXCLUDED.result_epoch,
            result_id = EXCLUDED.result_id,
            expires_at = EXCLUDED.expires_at;
    END IF;

    PERFORM pg_notify('__P__notify', '');
    RETURN QUERY SELECT row_id, new_offset, new_epoch, FALSE, NULL::TEXT;
END;
$body$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION __P__publish_strict(
    p_channel TEXT,
    p_data __D__,
    p_tags JSONB DEFAULT NULL,
    p_history_ttl INTERVAL DEFAULT NULL,
    p_history_size INTEGER DEFAULT NULL,
    p_meta_ttl INTERVAL DEFAULT NULL,
    p_version BIGINT DEFAULT NULL,
    p_version_epoch TEXT DEFAULT NULL,
    p_idempotency_key TEXT DEFAULT NULL,
    p_idempotency_ttl INTERVAL DEFAULT NULL,
    p_use_delta BOOLEAN DEFAULT FALSE,
    p_client_id TEXT DEFAULT NULL,
    p_user_id TEXT DEFAULT NULL,
    p_conn_info __D__ DEFAULT NULL,
    p_chan_info __D__ DEFAULT NULL,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS TABLE(out_result_id BIGINT, out_channel_offset BIGINT, out_epoch TEXT) AS $body$
DECLARE
    r RECORD;
BEGIN
    SELECT * INTO r FROM __P__publish(p_channel, p_data, p_tags, p_history_ttl,
        p_history_size, p_meta_ttl, p_version, p_version_epoch, p_idempotency_key,
        p_idempotency_ttl, p_use_delta, p_client_id, p_user_id, p_conn_info, p_chan_info,
        p_num_shards);
    IF r.out_suppressed THEN
        RAISE EXCEPTION 'publish suppressed: %', r.out_suppress_reason;
    END IF;
    RETURN QUERY SELECT r.out_result_id, r.out_channel_offset, r.out_epoch;
END;
$body$ LANGUAGE plpgsql;

-- Joins (kind 1) and leaves (kind 2) are delivery-only rows; partition retention
-- removes them.
CREATE OR REPLACE FUNCTION __P__publish_presence_event(
    p_kind SMALLINT,
    p_channel TEXT,
    p_client_id TEXT,
    p_user_id TEXT,
    p_conn_info __D__,
    p_chan_info __D__,
    p_num_shards INTEGER
) RETURNS BIGINT AS $body$
DECLARE
    shard INTEGER;
    row_id BIGINT;
BEGIN
    shard := __P__lock_shard(p_channel, p_num_shards);
    INSERT INTO __T__ (channel, channel_offset, kind, client_id, user_id, conn_info,
                       chan_info, shard_id)
    VALUES (p_channel, 0, p_kind, p_client_id, p_user_id, p_conn_info, p_chan_info, shard)
    RETURNING id INTO row_id;
    PERFORM pg_notify('__P__notify', '');
    RETURN row_id;
END;
$body$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION __P__publish_join(
    p_channel TEXT,
    p_client_id TEXT,
    p_user_id TEXT,
    p_conn_info __D__ DEFAULT NULL,
    p_chan_info __D__ DEFAULT NULL,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS BIGINT AS $body$
    SELECT __P__publish_presence_event(1::SMALLINT, p_channel, p_client_id, p_user_id,
        p_conn_info, p_chan_info, p_num_shards);
$body$ LANGUAGE sql;

CREATE OR REPLACE FUNCTION __P__publish_leave(
    p_channel TEXT,
    p_client_id TEXT,
    p_user_id TEXT,
    p_conn_info __D__ DEFAULT NULL,
    p_chan_info __D__ DEFAULT NULL,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS BIGINT AS $body$
    SELECT __P__publish_presence_event(2::SMALLINT, p_channel, p_client_id, p_user_id,
        p_conn_info, p_chan_info, p_num_shards);
$body$ LANGUAGE sql;

-- Drops the publications of a channel; its position (meta) stays, as with Redis.
CREATE OR REPLACE FUNCTION __P__remove_history(
    p_channel TEXT,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS VOID AS $body$
BEGIN
    PERFORM __P__lock_shard(p_channel, p_num_shards);
    DELETE FROM __T__ WHERE channel = p_channel AND kind = 0;
END;
$body$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION __P__top_position(p_channel TEXT)
RETURNS TABLE(out_top_offset BIGINT, out_epoch TEXT) AS $body$
    SELECT COALESCE(m.top_offset, 0::BIGINT), COALESCE(m.epoch, ''::TEXT)
      FROM (SELECT 1) AS one
      LEFT JOIN __P__meta m ON m.channel = p_channel AND m.expires_at > now();
$body$ LANGUAGE sql;
"#;

/// Table and function names of one variant.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// `<prefix>_stream` or `<prefix>_binary_stream`.
    pub(crate) stream: String,
    /// `<stream>_` — the prefix of the other tables and the functions.
    pub(crate) prefix: String,
}

impl Names {
    pub(crate) fn new(table_prefix: &str, binary: bool) -> Self {
        let stream = if binary {
            format!("{table_prefix}_binary_stream")
        } else {
            format!("{table_prefix}_stream")
        };
        let prefix = format!("{stream}_");
        Names { stream, prefix }
    }

    pub(crate) fn meta(&self) -> String {
        format!("{}meta", self.prefix)
    }

    pub(crate) fn idempotency(&self) -> String {
        format!("{}idempotency", self.prefix)
    }

    pub(crate) fn shard_lock(&self) -> String {
        format!("{}shard_lock", self.prefix)
    }

    pub(crate) fn function(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The LISTEN/NOTIFY channel: `<stream>_notify`.
    pub(crate) fn notify_channel(&self) -> String {
        format!("{}notify", self.prefix)
    }
}

/// The DDL of one variant, plus its shard-lock rows.
pub(crate) fn ddl(table_prefix: &str, binary: bool, num_shards: u16) -> String {
    let names = Names::new(table_prefix, binary);
    let data_type = if binary { "BYTEA" } else { "JSONB" };
    let mut sql = TEMPLATE
        .replace("__EPOCH__", NEW_EPOCH_SQL)
        .replace("__VERSION__", &SCHEMA_VERSION.to_string())
        .replace("__P__", &names.prefix)
        .replace("__T__", &names.stream)
        .replace("__D__", data_type);
    sql.push_str(&format!(
        "INSERT INTO {} (shard_id) SELECT generate_series(0, {}) ON CONFLICT DO NOTHING;\n",
        names.shard_lock(),
        i32::from(num_shards) - 1
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        let n = Names::new("cf", false);
        assert_eq!(n.stream, "cf_stream");
        assert_eq!(n.meta(), "cf_stream_meta");
        assert_eq!(n.function("publish"), "cf_stream_publish");
        assert_eq!(n.notify_channel(), "cf_stream_notify");
        let b = Names::new("app", true);
        assert_eq!(b.stream, "app_binary_stream");
        assert_eq!(b.idempotency(), "app_binary_stream_idempotency");
    }

    #[test]
    fn ddl_has_no_tokens_left() {
        for binary in [false, true] {
            let sql = ddl("cf", binary, 4);
            assert!(!sql.contains("__"), "a token was not replaced");
            assert!(sql.contains("generate_series(0, 3)"));
        }
    }
}
