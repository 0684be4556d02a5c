//! Rows to publications, and values to parameters, for either data variant.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use gyre::{BrokerError, ClientInfo, Publication};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use crate::PgError;

/// A column, or an error naming it (never a panic on an unexpected type).
pub(crate) fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, PgError> {
    row.try_get(i).map_err(PgError::Db)
}

/// Reads and writes data columns (`data`, `conn_info`, `chan_info`, `current_data`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataCodec {
    pub(crate) binary: bool,
}

impl DataCodec {
    /// A data column; NULL reads as empty.
    pub(crate) fn get(self, row: &Row, i: usize) -> Result<Bytes, PgError> {
        Ok(if self.binary {
            col::<Option<Vec<u8>>>(row, i)?.map(Bytes::from)
        } else {
            col::<Option<String>>(row, i)?.map(Bytes::from)
        }
        .unwrap_or_default())
    }

    /// A data parameter; empty is NULL (as upstream stores an absent payload). JSONB
    /// needs JSON text.
    pub(crate) fn param(self, data: &Bytes) -> Result<Box<dyn ToSql + Sync + Send>, BrokerError> {
        if self.binary {
            let value = (!data.is_empty()).then(|| data.to_vec());
            return Ok(Box::new(value));
        }
        if data.is_empty() {
            return Ok(Box::new(None::<String>));
        }
        match std::str::from_utf8(data) {
            Ok(text) => Ok(Box::new(Some(text.to_owned()))),
            Err(_) => Err(BrokerError::BadRequest(
                "binary data needs the map broker's binary_data option".into(),
            )),
        }
    }
}

/// Tags as JSON text for a JSONB parameter; NULL when there are none.
pub(crate) fn tags_param(tags: &HashMap<String, String>) -> Option<String> {
    (!tags.is_empty()).then(|| serde_json::to_string(tags).unwrap_or_default())
}

/// Tags from a JSONB column read as text; values that are not strings are skipped.
fn tags(text: Option<String>) -> HashMap<String, String> {
    let Some(text) = text else {
        return HashMap::new();
    };
    match serde_json::from_str::<HashMap<String, serde_json::Value>>(&text) {
        Ok(map) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        Err(_) => HashMap::new(),
    }
}

fn info(
    codec: DataCodec,
    row: &Row,
    client: usize,
    user: usize,
    conn: usize,
    chan: usize,
) -> Result<Option<ClientInfo>, PgError> {
    // Upstream keeps an entry's publisher only with its client id.
    let Some(client) = col::<Option<String>>(row, client)? else {
        return Ok(None);
    };
    let mut info = ClientInfo::new(
        col::<Option<String>>(row, user)?.unwrap_or_default(),
        client,
    );
    info.conn_info = codec.get(row, conn)?;
    info.chan_info = codec.get(row, chan)?;
    Ok(Some(info))
}

/// A state entry whose columns start at `at` (`sql::STATE_COLUMNS`); `None` for the
/// empty side of an outer join.
pub(crate) fn state_entry(
    codec: DataCodec,
    row: &Row,
    at: usize,
) -> Result<Option<Publication>, PgError> {
    let Some(key) = col::<Option<String>>(row, at)? else {
        return Ok(None);
    };
    let mut p = Publication::new(codec.get(row, at + 1)?);
    p.key = key;
    p.tags = tags(col(row, at + 2)?);
    p.offset = offset(col(row, at + 3)?);
    p.info = info(codec, row, at + 4, at + 5, at + 6, at + 7)?;
    p.time = col::<Option<i64>>(row, at + 8)?.unwrap_or_default();
    Ok(Some(p))
}

/// A stream row whose columns start at `at` (`sql::STREAM_COLUMNS`); `None` for the
/// empty side of an outer join.
pub(crate) fn stream_entry(
    codec: DataCodec,
    row: &Row,
    at: usize,
) -> Result<Option<Publication>, PgError> {
    let Some(key) = col::<Option<String>>(row, at)? else {
        return Ok(None);
    };
    let mut p = Publication::new(codec.get(row, at + 1)?);
    p.key = key;
    p.tags = tags(col(row, at + 2)?);
    p.offset = offset(col(row, at + 3)?);
    p.removed = col::<Option<bool>>(row, at + 4)?.unwrap_or(false);
    p.info = info(codec, row, at + 5, at + 6, at + 7, at + 8)?;
    p.time = col::<Option<i64>>(row, at + 9)?.unwrap_or_default();
    Ok(Some(p))
}

/// A stored offset (never negative) as a stream offset.
pub(crate) fn offset(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A PostgreSQL interval literal for a TTL; `None` for zero (no TTL).
pub(crate) fn interval(d: Duration) -> Option<String> {
    (!d.is_zero()).then(|| format!("{} milliseconds", d.as_millis().max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_tags() {
        assert_eq!(interval(Duration::ZERO), None);
        assert_eq!(
            interval(Duration::from_micros(10)).as_deref(),
            Some("1 milliseconds")
        );
        assert_eq!(
            interval(Duration::from_secs(60)).as_deref(),
            Some("60000 milliseconds")
        );
        let t = tags(Some(r#"{"a":"1","n":2}"#.into()));
        assert_eq!(t.len(), 1);
        assert_eq!(t["a"], "1");
        assert!(tags(None).is_empty());
        assert_eq!(tags_param(&HashMap::new()), None);
    }

    #[test]
    fn text_data_must_be_utf8() {
        let codec = DataCodec { binary: false };
        assert!(codec.param(&Bytes::from_static(b"\xff\x00")).is_err());
        assert!(codec.param(&Bytes::from_static(b"{}")).is_ok());
        let codec = DataCodec { binary: true };
        assert!(codec.param(&Bytes::from_static(b"\xff\x00")).is_ok());
    }
}
