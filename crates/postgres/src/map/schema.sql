-- Gyre's PostgreSQL map broker: tables and functions.
--
-- The names, columns, parameter lists and results are those of Centrifugo v6's PostgreSQL
-- map broker, so that Gyre and Centrifugo nodes can share one database: either may create
-- the schema, and each calls the other's functions. The bodies are Gyre's own.
--
-- Rendered once per data variant before it runs:
--   @P@ -> the variant's prefix: "<table_prefix>_map_" (JSONB data) or
--          "<table_prefix>_binary_map_" (BYTEA data)
--   @T@ -> JSONB or BYTEA
-- Every statement is idempotent. Tables and indexes come first, then the functions, which
-- run as a separate batch (the line FUNCTIONS below splits them).

-- Every change of every channel, in per-channel offset order, and the outbox that nodes
-- poll (by shard and id) to deliver changes. Daily partitions on created_at; old ones are
-- dropped whole.
CREATE TABLE IF NOT EXISTS @P@stream (
    id              BIGSERIAL,
    channel         TEXT NOT NULL,
    channel_offset  BIGINT NOT NULL,
    epoch           TEXT NOT NULL DEFAULT '',
    key             TEXT NOT NULL,
    data            @T@,
    tags            JSONB,
    client_id       TEXT,
    user_id         TEXT,
    conn_info       @T@,
    chan_info       @T@,
    removed         BOOLEAN DEFAULT FALSE,
    prev_data       @T@,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    shard_id        SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX IF NOT EXISTS @P@stream_channel_epoch_offset_idx
    ON @P@stream (channel, epoch, channel_offset);
CREATE INDEX IF NOT EXISTS @P@stream_channel_id_idx ON @P@stream (channel, id DESC);
CREATE INDEX IF NOT EXISTS @P@stream_shard_id_idx ON @P@stream (shard_id, id);
CREATE INDEX IF NOT EXISTS @P@stream_created_at_idx ON @P@stream (created_at);

-- The current value of every key.
CREATE TABLE IF NOT EXISTS @P@state (
    channel             TEXT NOT NULL,
    key                 TEXT NOT NULL,
    data                @T@,
    tags                JSONB,
    client_id           TEXT,
    user_id             TEXT,
    conn_info           @T@,
    chan_info           @T@,
    key_version         BIGINT DEFAULT 0,
    key_version_epoch   TEXT,
    key_offset          BIGINT NOT NULL,
    expires_at          TIMESTAMPTZ,
    created_at          TIMESTAMPTZ DEFAULT NOW(),
    updated_at          TIMESTAMPTZ DEFAULT NOW(),
    PRIMARY KEY (channel, key)
);

CREATE INDEX IF NOT EXISTS @P@state_expires_idx
    ON @P@state (expires_at) WHERE expires_at IS NOT NULL;

-- Per channel: the stream top and the epoch (a new epoch when the row is recreated).
CREATE TABLE IF NOT EXISTS @P@meta (
    channel         TEXT PRIMARY KEY,
    top_offset      BIGINT NOT NULL DEFAULT 0,
    epoch           TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ DEFAULT NOW(),
    updated_at      TIMESTAMPTZ DEFAULT NOW(),
    expires_at      TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS @P@meta_expires_idx
    ON @P@meta (expires_at) WHERE expires_at IS NOT NULL;

-- Results of publications made with an idempotency key, with the epoch they were made in.
CREATE TABLE IF NOT EXISTS @P@idempotency (
    channel         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    result_offset   BIGINT NOT NULL,
    result_epoch    TEXT NOT NULL,
    result_id       BIGINT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, idempotency_key)
);

CREATE INDEX IF NOT EXISTS @P@idempotency_expires_idx ON @P@idempotency (expires_at);

-- One row per shard. Every write locks its shard's row first, so stream ids of one shard
-- are handed out and committed in the same order: a poller's "id > cursor" misses none.
CREATE TABLE IF NOT EXISTS @P@shard_lock (
    shard_id SMALLINT PRIMARY KEY
);

CREATE TABLE IF NOT EXISTS @P@schema_version (
    id              INTEGER PRIMARY KEY,
    schema_version  INTEGER NOT NULL
);
INSERT INTO @P@schema_version (id, schema_version) VALUES (1, 1) ON CONFLICT (id) DO NOTHING;

-- FUNCTIONS

-- Sets a key. Checks run in this order: idempotency, version, key mode, expected position;
-- a check that fails returns suppressed = TRUE with its reason and changes nothing (except
-- an if_new key's TTL when p_refresh_ttl_on_suppress).
CREATE OR REPLACE FUNCTION @P@publish(
    p_channel TEXT,
    p_key TEXT,
    p_data @T@,
    p_tags JSONB DEFAULT NULL,
    p_key_ttl INTERVAL DEFAULT NULL,
    p_meta_ttl INTERVAL DEFAULT NULL,
    p_key_mode TEXT DEFAULT NULL,
    p_expected_offset BIGINT DEFAULT NULL,
    p_expected_epoch TEXT DEFAULT NULL,
    p_key_version BIGINT DEFAULT NULL,
    p_key_version_epoch TEXT DEFAULT NULL,
    p_idempotency_key TEXT DEFAULT NULL,
    p_idempotency_ttl INTERVAL DEFAULT NULL,
    p_use_delta BOOLEAN DEFAULT FALSE,
    p_client_id TEXT DEFAULT NULL,
    p_user_id TEXT DEFAULT NULL,
    p_conn_info @T@ DEFAULT NULL,
    p_chan_info @T@ DEFAULT NULL,
    p_refresh_ttl_on_suppress BOOLEAN DEFAULT FALSE,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS TABLE(
    result_id BIGINT,
    channel_offset BIGINT,
    epoch TEXT,
    suppressed BOOLEAN,
    suppress_reason TEXT,
    current_data @T@,
    current_offset BIGINT
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    shards INTEGER;
    shard_no INTEGER;
    top BIGINT;
    chan_epoch TEXT;
    meta_is_new BOOLEAN;
    had_version BIGINT;
    had_version_epoch TEXT;
    had_offset BIGINT;
    had_data @T@;
    prior_offset BIGINT;
    prior_epoch TEXT;
    key_present BOOLEAN;
    base_data @T@;
    row_id BIGINT;
BEGIN
    IF p_meta_ttl IS NOT NULL AND p_key_ttl IS NOT NULL AND p_meta_ttl < p_key_ttl THEN
        RAISE EXCEPTION 'map meta_ttl must not be shorter than key_ttl';
    END IF;
    shards := COALESCE(p_num_shards, (SELECT count(*)::INTEGER FROM @P@shard_lock));
    IF shards <= 0 THEN
        RAISE EXCEPTION '@P@shard_lock has no rows: the schema was not initialized';
    END IF;
    shard_no := abs(hashtext(p_channel)::BIGINT) % shards;
    -- Lock order everywhere: shard, then meta, then state.
    PERFORM 1 FROM @P@shard_lock l WHERE l.shard_id = shard_no FOR UPDATE;

    -- A channel past its meta TTL is over, whether or not the cleanup came by yet.
    DELETE FROM @P@meta m WHERE m.channel = p_channel AND m.expires_at <= now();
    -- The channel's meta row, created with a fresh epoch when missing. The no-op update
    -- on conflict locks the row in the same statement.
    INSERT INTO @P@meta AS m (channel, top_offset, epoch, updated_at)
    VALUES (p_channel, 0, left(md5(random()::TEXT || clock_timestamp()::TEXT), 8), now())
    ON CONFLICT (channel) DO UPDATE SET updated_at = m.updated_at
    RETURNING m.top_offset, m.epoch, (m.xmax = 0) INTO top, chan_epoch, meta_is_new;
    IF meta_is_new THEN
        -- Keys and results left from the channel's previous epoch are not part of the
        -- new one.
        DELETE FROM @P@state s WHERE s.channel = p_channel;
        DELETE FROM @P@idempotency i WHERE i.channel = p_channel;
    END IF;

    IF p_idempotency_key IS NOT NULL THEN
        SELECT i.result_offset, i.result_epoch INTO prior_offset, prior_epoch
          FROM @P@idempotency i
         WHERE i.channel = p_channel AND i.idempotency_key = p_idempotency_key
           AND i.expires_at > now();
        IF FOUND THEN
            channel_offset := prior_offset;
            epoch := prior_epoch;
            suppressed := TRUE;
            suppress_reason := 'idempotency';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    IF p_key_version IS NOT NULL AND p_key IS NOT NULL AND p_key <> '' THEN
        SELECT s.key_version, s.key_version_epoch INTO had_version, had_version_epoch
          FROM @P@state s WHERE s.channel = p_channel AND s.key = p_key;
        -- An empty version epoch compares with any stored one.
        IF FOUND AND COALESCE(had_version, 0) > 0
           AND (COALESCE(p_key_version_epoch, '') = '' OR p_key_version_epoch = had_version_epoch)
           AND p_key_version <= had_version THEN
            channel_offset := top;
            epoch := chan_epoch;
            suppressed := TRUE;
            suppress_reason := 'version';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    IF p_key_mode IS NOT NULL THEN
        -- A key past its TTL that the expiry worker has not removed yet still exists.
        key_present := EXISTS (
            SELECT 1 FROM @P@state s WHERE s.channel = p_channel AND s.key = p_key);
        IF p_key_mode = 'if_new' AND key_present THEN
            IF p_refresh_ttl_on_suppress AND p_key_ttl IS NOT NULL THEN
                UPDATE @P@state s SET expires_at = now() + p_key_ttl, updated_at = now()
                 WHERE s.channel = p_channel AND s.key = p_key;
                -- A kept-alive key keeps its channel (and epoch) alive too.
                IF p_meta_ttl IS NOT NULL THEN
                    UPDATE @P@meta m SET expires_at = now() + p_meta_ttl, updated_at = now()
                     WHERE m.channel = p_channel;
                END IF;
            END IF;
            channel_offset := top;
            epoch := chan_epoch;
            suppressed := TRUE;
            suppress_reason := 'key_exists';
            RETURN NEXT;
            RETURN;
        ELSIF p_key_mode = 'if_exists' AND NOT key_present THEN
            channel_offset := top;
            epoch := chan_epoch;
            suppressed := TRUE;
            suppress_reason := 'key_not_found';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    IF p_expected_offset IS NOT NULL THEN
        SELECT s.key_offset, s.data INTO had_offset, had_data
          FROM @P@state s WHERE s.channel = p_channel AND s.key = p_key;
        IF NOT FOUND OR had_offset <> p_expected_offset
           OR (p_expected_epoch IS NOT NULL AND chan_epoch <> p_expected_epoch) THEN
            channel_offset := top;
            epoch := chan_epoch;
            suppressed := TRUE;
            suppress_reason := 'position_mismatch';
            current_data := had_data;
            current_offset := had_offset;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    UPDATE @P@meta m
       SET top_offset = m.top_offset + 1,
           expires_at = CASE WHEN p_meta_ttl IS NULL THEN m.expires_at ELSE now() + p_meta_ttl END,
           updated_at = now()
     WHERE m.channel = p_channel
    RETURNING m.top_offset INTO top;

    IF p_use_delta AND p_key IS NOT NULL AND p_key <> '' THEN
        SELECT s.data INTO base_data FROM @P@state s WHERE s.channel = p_channel AND s.key = p_key;
    END IF;

    INSERT INTO @P@state AS s (
        channel, key, data, tags, client_id, user_id, conn_info, chan_info,
        key_version, key_version_epoch, key_offset, expires_at, updated_at)
    VALUES (
        p_channel, p_key, p_data, p_tags, p_client_id, p_user_id, p_conn_info, p_chan_info,
        p_key_version, p_key_version_epoch, top, now() + p_key_ttl, now())
    ON CONFLICT (channel, key) DO UPDATE SET
        data = EXCLUDED.data,
        tags = EXCLUDED.tags,
        client_id = EXCLUDED.client_id,
        user_id = EXCLUDED.user_id,
        conn_info = EXCLUDED.conn_info,
        chan_info = EXCLUDED.chan_info,
        -- An unversioned write keeps the stored version: a late older version stays refused.
        key_version = COALESCE(EXCLUDED.key_version, s.key_version),
        key_version_epoch = COALESCE(EXCLUDED.key_version_epoch, s.key_version_epoch),
        key_offset = EXCLUDED.key_offset,
        expires_at = EXCLUDED.expires_at,
        updated_at = now();

    INSERT INTO @P@stream (
        channel, channel_offset, epoch, key, data, tags, client_id, user_id,
        conn_info, chan_info, prev_data, shard_id)
    VALUES (
        p_channel, top, chan_epoch, p_key, p_data, p_tags, p_client_id, p_user_id,
        p_conn_info, p_chan_info, base_data, shard_no)
    RETURNING id INTO row_id;

    IF p_idempotency_key IS NOT NULL THEN
        -- A row still here is past its TTL (a live one returned above): replace it.
        INSERT INTO @P@idempotency AS i (
            channel, idempotency_key, result_offset, result_epoch, result_id, expires_at)
        VALUES (
            p_channel, p_idempotency_key, top, chan_epoch, row_id,
            now() + COALESCE(p_idempotency_ttl, INTERVAL '5 minutes'))
        ON CONFLICT (channel, idempotency_key) DO UPDATE SET
            result_offset = EXCLUDED.result_offset,
            result_epoch = EXCLUDED.result_epoch,
            result_id = EXCLUDED.result_id,
            expires_at = EXCLUDED.expires_at;
    END IF;

    PERFORM pg_notify('@P@stream_notify', '');

    result_id := row_id;
    channel_offset := top;
    epoch := chan_epoch;
    suppressed := FALSE;
    RETURN NEXT;
END;
$fn$;

-- @P@publish for SQL callers that want an error instead of a suppressed result (the
-- transaction then rolls back).
CREATE OR REPLACE FUNCTION @P@publish_strict(
    p_channel TEXT,
    p_key TEXT,
    p_data @T@,
    p_tags JSONB DEFAULT NULL,
    p_key_ttl INTERVAL DEFAULT NULL,
    p_meta_ttl INTERVAL DEFAULT NULL,
    p_key_mode TEXT DEFAULT NULL,
    p_expected_offset BIGINT DEFAULT NULL,
    p_expected_epoch TEXT DEFAULT NULL,
    p_key_version BIGINT DEFAULT NULL,
    p_key_version_epoch TEXT DEFAULT NULL,
    p_idempotency_key TEXT DEFAULT NULL,
    p_idempotency_ttl INTERVAL DEFAULT NULL,
    p_use_delta BOOLEAN DEFAULT FALSE,
    p_client_id TEXT DEFAULT NULL,
    p_user_id TEXT DEFAULT NULL,
    p_conn_info @T@ DEFAULT NULL,
    p_chan_info @T@ DEFAULT NULL,
    p_refresh_ttl_on_suppress BOOLEAN DEFAULT FALSE,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS TABLE(
    result_id BIGINT,
    channel_offset BIGINT,
    epoch TEXT
) LANGUAGE plpgsql AS $fn$
DECLARE
    r RECORD;
BEGIN
    SELECT * INTO r FROM @P@publish(
        p_channel, p_key, p_data, p_tags, p_key_ttl, p_meta_ttl, p_key_mode,
        p_expected_offset, p_expected_epoch, p_key_version, p_key_version_epoch,
        p_idempotency_key, p_idempotency_ttl, p_use_delta, p_client_id, p_user_id,
        p_conn_info, p_chan_info, p_refresh_ttl_on_suppress, p_num_shards);
    IF r.suppressed THEN
        IF r.suppress_reason IN ('key_exists', 'idempotency') THEN
            RAISE EXCEPTION 'map publish to %.% suppressed: %', p_channel, p_key, r.suppress_reason
                USING ERRCODE = 'unique_violation';
        ELSIF r.suppress_reason = 'key_not_found' THEN
            RAISE EXCEPTION 'map publish to %.% suppressed: key not found', p_channel, p_key
                USING ERRCODE = 'no_data_found';
        ELSIF r.suppress_reason = 'position_mismatch' THEN
            RAISE EXCEPTION 'map publish to %.% suppressed: position mismatch', p_channel, p_key
                USING ERRCODE = 'serialization_failure', DETAIL = COALESCE(r.current_data::TEXT, '');
        ELSIF r.suppress_reason = 'version' THEN
            RAISE EXCEPTION 'map publish to %.% suppressed: version', p_channel, p_key
                USING ERRCODE = 'serialization_failure';
        ELSE
            RAISE EXCEPTION 'map publish to %.% suppressed: %', p_channel, p_key, r.suppress_reason;
        END IF;
    END IF;
    result_id := r.result_id;
    channel_offset := r.channel_offset;
    epoch := r.epoch;
    RETURN NEXT;
END;
$fn$;

-- Removes a key: a removal row at a new offset. A missing channel or key (or one past its
-- TTL) is suppressed with key_not_found.
CREATE OR REPLACE FUNCTION @P@remove(
    p_channel TEXT,
    p_key TEXT,
    p_meta_ttl INTERVAL DEFAULT NULL,
    p_expected_offset BIGINT DEFAULT NULL,
    p_expected_epoch TEXT DEFAULT NULL,
    p_idempotency_key TEXT DEFAULT NULL,
    p_idempotency_ttl INTERVAL DEFAULT NULL,
    p_client_id TEXT DEFAULT NULL,
    p_user_id TEXT DEFAULT NULL,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS TABLE(
    result_id BIGINT,
    channel_offset BIGINT,
    epoch TEXT,
    suppressed BOOLEAN,
    suppress_reason TEXT,
    current_data @T@,
    current_offset BIGINT
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    shards INTEGER;
    shard_no INTEGER;
    top BIGINT;
    chan_epoch TEXT;
    had_offset BIGINT;
    had_data @T@;
    prior_offset BIGINT;
    prior_epoch TEXT;
    last_tags JSONB;
    row_id BIGINT;
BEGIN
    shards := COALESCE(p_num_shards, (SELECT count(*)::INTEGER FROM @P@shard_lock));
    IF shards <= 0 THEN
        RAISE EXCEPTION '@P@shard_lock has no rows: the schema was not initialized';
    END IF;
    shard_no := abs(hashtext(p_channel)::BIGINT) % shards;
    PERFORM 1 FROM @P@shard_lock l WHERE l.shard_id = shard_no FOR UPDATE;

    DELETE FROM @P@meta m WHERE m.channel = p_channel AND m.expires_at <= now();
    -- Locked, so that the meta cleanup cannot delete it before the offset moves.
    SELECT m.top_offset, m.epoch INTO top, chan_epoch
      FROM @P@meta m WHERE m.channel = p_channel FOR UPDATE;
    IF NOT FOUND THEN
        channel_offset := 0;
        epoch := '';
        suppressed := TRUE;
        suppress_reason := 'key_not_found';
        RETURN NEXT;
        RETURN;
    END IF;

    IF p_idempotency_key IS NOT NULL THEN
        SELECT i.result_offset, i.result_epoch INTO prior_offset, prior_epoch
          FROM @P@idempotency i
         WHERE i.channel = p_channel AND i.idempotency_key = p_idempotency_key
           AND i.expires_at > now();
        IF FOUND THEN
            channel_offset := prior_offset;
            epoch := prior_epoch;
            suppressed := TRUE;
            suppress_reason := 'idempotency';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    IF p_expected_offset IS NOT NULL THEN
        SELECT s.key_offset, s.data INTO had_offset, had_data
          FROM @P@state s WHERE s.channel = p_channel AND s.key = p_key;
        IF NOT FOUND OR had_offset <> p_expected_offset
           OR (p_expected_epoch IS NOT NULL AND chan_epoch <> p_expected_epoch) THEN
            channel_offset := top;
            epoch := chan_epoch;
            suppressed := TRUE;
            suppress_reason := 'position_mismatch';
            current_data := had_data;
            current_offset := had_offset;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    -- Read before the delete: the removal carries the entry's tags (for tags filters).
    SELECT s.tags INTO last_tags
      FROM @P@state s
     WHERE s.channel = p_channel AND s.key = p_key
       AND (s.expires_at IS NULL OR s.expires_at > now());
    IF NOT FOUND THEN
        channel_offset := top;
        epoch := chan_epoch;
        suppressed := TRUE;
        suppress_reason := 'key_not_found';
        RETURN NEXT;
        RETURN;
    END IF;

    UPDATE @P@meta m
       SET top_offset = m.top_offset + 1,
           expires_at = CASE WHEN p_meta_ttl IS NULL THEN m.expires_at ELSE now() + p_meta_ttl END,
           updated_at = now()
     WHERE m.channel = p_channel
    RETURNING m.top_offset INTO top;

    DELETE FROM @P@state s WHERE s.channel = p_channel AND s.key = p_key;

    INSERT INTO @P@stream (
        channel, channel_offset, epoch, key, removed, client_id, user_id, shard_id, tags)
    VALUES (
        p_channel, top, chan_epoch, p_key, TRUE, p_client_id, p_user_id, shard_no, last_tags)
    RETURNING id INTO row_id;

    IF p_idempotency_key IS NOT NULL THEN
        INSERT INTO @P@idempotency AS i (
            channel, idempotency_key, result_offset, result_epoch, result_id, expires_at)
        VALUES (
            p_channel, p_idempotency_key, top, chan_epoch, row_id,
            now() + COALESCE(p_idempotency_ttl, INTERVAL '5 minutes'))
        ON CONFLICT (channel, idempotency_key) DO UPDATE SET
            result_offset = EXCLUDED.result_offset,
            result_epoch = EXCLUDED.result_epoch,
            result_id = EXCLUDED.result_id,
            expires_at = EXCLUDED.expires_at;
    END IF;

    PERFORM pg_notify('@P@stream_notify', '');

    result_id := row_id;
    channel_offset := top;
    epoch := chan_epoch;
    suppressed := FALSE;
    RETURN NEXT;
END;
$fn$;

-- @P@remove that raises no_data_found instead of returning a suppressed result.
CREATE OR REPLACE FUNCTION @P@remove_strict(
    p_channel TEXT,
    p_key TEXT,
    p_meta_ttl INTERVAL DEFAULT NULL,
    p_expected_offset BIGINT DEFAULT NULL,
    p_expected_epoch TEXT DEFAULT NULL,
    p_idempotency_key TEXT DEFAULT NULL,
    p_idempotency_ttl INTERVAL DEFAULT NULL,
    p_client_id TEXT DEFAULT NULL,
    p_user_id TEXT DEFAULT NULL,
    p_num_shards INTEGER DEFAULT NULL
) RETURNS TABLE(
    result_id BIGINT,
    channel_offset BIGINT,
    epoch TEXT
) LANGUAGE plpgsql AS $fn$
DECLARE
    r RECORD;
BEGIN
    SELECT * INTO r FROM @P@remove(
        p_channel, p_key, p_meta_ttl, p_expected_offset, p_expected_epoch,
        p_idempotency_key, p_idempotency_ttl, p_client_id, p_user_id, p_num_shards);
    IF r.suppressed THEN
        RAISE EXCEPTION 'map remove of %.% suppressed: %', p_channel, p_key, r.suppress_reason
            USING ERRCODE = 'no_data_found';
    END IF;
    result_id := r.result_id;
    channel_offset := r.channel_offset;
    epoch := r.epoch;
    RETURN NEXT;
END;
$fn$;

-- Removes keys past their TTL (at most p_batch_size, of p_channel or of every channel),
-- each with a removal row carrying its last tags, and returns them.
CREATE OR REPLACE FUNCTION @P@expire_keys(
    p_batch_size INT DEFAULT 1000,
    p_num_shards INTEGER DEFAULT NULL,
    p_meta_ttl INTERVAL DEFAULT NULL,
    p_channel TEXT DEFAULT NULL
) RETURNS TABLE(
    out_channel TEXT,
    out_key TEXT,
    out_offset BIGINT,
    out_epoch TEXT
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    shards INTEGER;
    shard_no INTEGER;
    budget INTEGER := p_batch_size;
    chan TEXT;
    top BIGINT;
    chan_epoch TEXT;
    gone_keys TEXT[];
    gone_tags JSONB[];
    n INTEGER;
    emitted BOOLEAN := FALSE;
BEGIN
    shards := COALESCE(p_num_shards, (SELECT count(*)::INTEGER FROM @P@shard_lock));
    IF shards <= 0 THEN
        RAISE EXCEPTION '@P@shard_lock has no rows: the schema was not initialized';
    END IF;
    FOR chan IN
        SELECT DISTINCT s.channel FROM @P@state s
         WHERE s.expires_at IS NOT NULL AND s.expires_at <= now()
           AND (p_channel IS NULL OR s.channel = p_channel)
         ORDER BY s.channel
    LOOP
        EXIT WHEN budget <= 0;
        shard_no := abs(hashtext(chan)::BIGINT) % shards;
        PERFORM 1 FROM @P@shard_lock l WHERE l.shard_id = shard_no FOR UPDATE;
        DELETE FROM @P@meta m WHERE m.channel = chan AND m.expires_at <= now();
        SELECT m.top_offset, m.epoch INTO top, chan_epoch
          FROM @P@meta m WHERE m.channel = chan FOR UPDATE;
        IF NOT FOUND THEN
            -- The channel itself is gone: nobody can be told, drop the keys quietly.
            DELETE FROM @P@state s
             WHERE s.channel = chan AND s.expires_at IS NOT NULL AND s.expires_at <= now();
            CONTINUE;
        END IF;

        SELECT array_agg(e.key ORDER BY e.key), array_agg(COALESCE(e.tags, '{}'::JSONB) ORDER BY e.key)
          INTO gone_keys, gone_tags
          FROM (SELECT s.key, s.tags FROM @P@state s
                 WHERE s.channel = chan AND s.expires_at IS NOT NULL AND s.expires_at <= now()
                 ORDER BY s.key
                 LIMIT budget
                   FOR UPDATE SKIP LOCKED) e;
        n := COALESCE(cardinality(gone_keys), 0);
        CONTINUE WHEN n = 0;

        UPDATE @P@meta m
           SET top_offset = m.top_offset + n,
               expires_at = CASE WHEN p_meta_ttl IS NULL THEN m.expires_at ELSE now() + p_meta_ttl END,
               updated_at = now()
         WHERE m.channel = chan;
        DELETE FROM @P@state s WHERE s.channel = chan AND s.key = ANY (gone_keys);
        INSERT INTO @P@stream (channel, channel_offset, epoch, key, removed, shard_id, tags)
        SELECT chan, top + g.ord, chan_epoch, g.gkey, TRUE, shard_no, g.gtags
          FROM unnest(gone_keys, gone_tags) WITH ORDINALITY AS g(gkey, gtags, ord);

        RETURN QUERY
        SELECT chan, g.gkey, top + g.ord, chan_epoch
          FROM unnest(gone_keys) WITH ORDINALITY AS g(gkey, ord);

        emitted := TRUE;
        budget := budget - n;
    END LOOP;
    IF emitted THEN
        PERFORM pg_notify('@P@stream_notify', '');
    END IF;
END;
$fn$;
