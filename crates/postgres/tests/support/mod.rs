//! A throwaway schema per test on the shared PostgreSQL (127.0.0.1:5432, db `test`),
//! dropped when the test ends (also when it fails).

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use gyre_postgres::map::{PgMapBroker, PgMapBrokerConfig};
use rand::Rng;
use tokio_postgres::{Client, NoTls};

/// The database the tests use; `GYRE_TEST_POSTGRES` overrides it.
pub fn base_dsn() -> String {
    std::env::var("GYRE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgresql://postgres:postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own, dropped (with everything in it) on drop.
pub struct TestDb {
    pub schema: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let suffix: u64 = rand::rng().random();
        let schema = format!("gyre_pgmap_{suffix:016x}");
        let client = connect(&base_dsn()).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create test schema");
        let db = TestDb { schema };
        db.install_foreign_schema().await;
        db
    }

    /// With `GYRE_PGMAP_SCHEMA_TEMPLATE` naming another implementation's schema template
    /// (placeholders `__PREFIX__` and `__DATA_TYPE__`, e.g. Centrifugo's), installs it
    /// before any broker connects: the broker then finds a complete schema and uses that
    /// implementation's functions, so the suite checks both agree.
    async fn install_foreign_schema(&self) {
        let Ok(path) = std::env::var("GYRE_PGMAP_SCHEMA_TEMPLATE") else {
            return;
        };
        let template = std::fs::read_to_string(&path).expect("schema template");
        let client = self.client().await;
        for (prefix, data_type) in [("cf_map_", "JSONB"), ("cf_binary_map_", "BYTEA")] {
            let sql = template
                .replace("__PREFIX__", prefix)
                .replace("__DATA_TYPE__", data_type);
            client.batch_execute(&sql).await.expect("foreign schema");
        }
    }

    /// A DSN whose connections use only this schema.
    pub fn dsn(&self) -> String {
        let base = base_dsn();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.schema)
    }

    /// A broker config on this schema that delivers quickly.
    pub fn config(&self) -> PgMapBrokerConfig {
        let mut c = PgMapBrokerConfig::new(self.dsn());
        c.pool_size = 4;
        c.num_shards = 2;
        c.poll_interval = Duration::from_millis(25);
        c.use_notify = true;
        c.ttl_check_interval = Duration::from_millis(200);
        c
    }

    pub async fn broker(&self) -> PgMapBroker {
        PgMapBroker::connect(self.config())
            .await
            .expect("broker connects")
    }

    /// A plain connection into this schema.
    pub async fn client(&self) -> Client {
        connect(&self.dsn()).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // Runs on its own thread: the test's runtime may be gone or blocked.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = connect(&base_dsn()).await;
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            });
        });
        let _ = done.join();
    }
}

pub async fn connect(dsn: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls)
        .await
        .expect("postgresql on 127.0.0.1:5432");
    tokio::spawn(connection);
    client
}
