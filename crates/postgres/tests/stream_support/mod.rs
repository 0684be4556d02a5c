//! A throwaway schema on the shared PostgreSQL (127.0.0.1:5432, trust auth, db `test`):
//! created with a random suffix, dropped when the guard goes, even after a failed test.

#![allow(dead_code, unreachable_pub)]

use tokio_postgres::NoTls;

/// The shared server, as a `key=value` DSN without a schema.
pub const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// A schema of one test; dropped (with everything in it) on drop.
pub struct Schema {
    pub name: String,
}

impl Schema {
    /// Creates `gyre_<test>_<random>`.
    pub async fn create(test: &str) -> Schema {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let test: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let name = format!("gyre_{test}_{}", &suffix[..10]);
        let (client, conn) = tokio_postgres::connect(SERVER, NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create schema");
        Schema { name }
    }

    /// A DSN whose connections work in this schema.
    pub fn dsn(&self) -> String {
        format!("{SERVER} options='-c search_path={}'", self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside a runtime: use a thread with its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(SERVER, NoTls).await {
                    tokio::spawn(conn);
                    if let Err(e) = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await
                    {
                        eprintln!("dropping schema {name}: {e}");
                    }
                }
            });
        })
        .join()
        .ok();
    }
}
