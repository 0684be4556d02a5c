//! The controller's tables and function, named as Centrifugo's
//! (`internal/controllers/controller_postgres_schema.sql`).

/// Tokens: `__C__` is `<prefix>_controller_`.
const TEMPLATE: &str = r#"
CREATE TABLE IF NOT EXISTS __C__messages (
    id          BIGSERIAL,
    shard_id    SMALLINT NOT NULL DEFAULT 0,
    node_id     TEXT NOT NULL DEFAULT '',
    data        BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS __C__messages_shard_id_idx ON __C__messages (shard_id, id);

CREATE TABLE IF NOT EXISTS __C__shard_lock (shard_id SMALLINT PRIMARY KEY);

CREATE TABLE IF NOT EXISTS __C__schema_version (
    id              INTEGER PRIMARY KEY,
    schema_version  INTEGER NOT NULL
);
INSERT INTO __C__schema_version (id, schema_version) VALUES (1, 1)
    ON CONFLICT (id) DO NOTHING;

-- A message for one node goes to that node's shard, a broadcast to any shard; the
-- shard's lock row orders inserts so its ids become visible in id order.
CREATE OR REPLACE FUNCTION __C__publish(
    p_data BYTEA,
    p_node_id TEXT DEFAULT '',
    p_num_shards INTEGER DEFAULT NULL
) RETURNS BIGINT AS $body$
DECLARE
    shards INTEGER := p_num_shards;
    shard INTEGER := 0;
    row_id BIGINT;
BEGIN
    IF shards IS NULL OR shards <= 0 THEN
        SELECT count(*)::INTEGER INTO shards FROM __C__shard_lock;
    END IF;
    IF shards > 1 THEN
        IF COALESCE(p_node_id, '') <> '' THEN
            shard := (abs(hashtext(p_node_id)::BIGINT) % shards)::INTEGER;
        ELSE
            shard := (txid_current() % shards)::INTEGER;
        END IF;
    END IF;
    PERFORM 1 FROM __C__shard_lock WHERE shard_id = shard FOR UPDATE;
    INSERT INTO __C__messages (shard_id, node_id, data)
    VALUES (shard, COALESCE(p_node_id, ''), p_data)
    RETURNING id INTO row_id;
    PERFORM pg_notify('__C__notify', '');
    RETURN row_id;
END;
$body$ LANGUAGE plpgsql;
"#;

/// Names of the controller's objects.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: String,
    pub(crate) messages: String,
    pub(crate) publish: String,
    pub(crate) notify_channel: String,
}

impl Names {
    pub(crate) fn new(table_prefix: &str) -> Self {
        let prefix = format!("{table_prefix}_controller_");
        Names {
            messages: format!("{prefix}messages"),
            publish: format!("{prefix}publish"),
            notify_channel: format!("{prefix}notify"),
            prefix,
        }
    }
}

/// The DDL, plus the shard-lock rows.
pub(crate) fn ddl(names: &Names, num_shards: u16) -> String {
    let mut sql = TEMPLATE.replace("__C__", &names.prefix);
    sql.push_str(&format!(
        "INSERT INTO {}shard_lock (shard_id) SELECT generate_series(0, {}) ON CONFLICT DO NOTHING;\n",
        names.prefix,
        i32::from(num_shards) - 1
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        let n = Names::new("cf");
        assert_eq!(n.messages, "cf_controller_messages");
        assert_eq!(n.publish, "cf_controller_publish");
        assert_eq!(n.notify_channel, "cf_controller_notify");
        assert!(!ddl(&n, 2).contains("__C__"));
    }
}
