//! The baseline both benchmarks compare reading the log with: the raw rows out of the database,
//! decoded by nobody (`COPY events TO STDOUT` on PostgreSQL, an undecoded `SELECT *` on SQLite).

use std::time::Instant;

use futures_util::TryStreamExt;
use roleledger::store::DatabaseUrl;
use sqlx::Connection;

/// Rows per second and the name of what was read.
pub async fn raw_rows_per_second(url: &DatabaseUrl) -> (f64, &'static str) {
    let started = Instant::now();
    let (rows, name) = match url {
        DatabaseUrl::Postgres(url) => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            let mut copy = connection.copy_out_raw("COPY events TO STDOUT").await.unwrap();
            let mut rows = 0u64;
            while let Some(chunk) = copy.try_next().await.unwrap() {
                rows += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
            }
            (rows, "COPY events TO STDOUT")
        }
        DatabaseUrl::Sqlite(path) => {
            let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite:{path}")).await.unwrap();
            let rows = sqlx::query("SELECT * FROM events ORDER BY position")
                .fetch(&mut connection)
                .try_fold(0u64, |n, _| async move { Ok(n + 1) })
                .await
                .unwrap();
            (rows, "SELECT * FROM events, rows not decoded")
        }
    };
    (rows as f64 / started.elapsed().as_secs_f64(), name)
}
