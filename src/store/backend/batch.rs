//! The writer's transaction and the one connection it keeps between batches, shared by both
//! adapters.

use sqlx::pool::PoolConnection;

/// The writer's transaction: begun and ended by the writer's own statements, so that `BEGIN`
/// travels with the statement that takes the lock, on a connection that the writer keeps between
/// batches (a pool would ping it before each one). A batch dropped before it ended closes its
/// connection, which rolls it back.
pub(crate) struct BatchTx<DB: sqlx::Database> {
    /// Taken out when the transaction ended.
    conn: Option<PoolConnection<DB>>,
}

impl<DB: sqlx::Database> BatchTx<DB> {
    /// A connection on which a transaction is being begun.
    pub fn begin(conn: PoolConnection<DB>) -> Self {
        Self { conn: Some(conn) }
    }

    pub fn conn(&mut self) -> &mut DB::Connection {
        self.conn.as_mut().expect("a transaction keeps its connection until it ends")
    }

    /// Ends the transaction with `statement` (COMMIT or ROLLBACK).
    pub async fn end(mut self, statement: &'static str, keeper: &ConnectionKeeper<DB>) -> Result<(), sqlx::Error>
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        sqlx::Executor::execute(self.conn(), statement).await?;
        self.ended(keeper);
        Ok(())
    }

    /// The transaction ended (committed or rolled back): the connection may serve the next batch.
    pub fn ended(mut self, keeper: &ConnectionKeeper<DB>) {
        if let Some(conn) = self.conn.take() {
            *keeper.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(conn);
        }
    }
}

impl<DB: sqlx::Database> Drop for BatchTx<DB> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// The one connection a writer keeps between batches.
pub(crate) struct ConnectionKeeper<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    kept: std::sync::Mutex<Option<PoolConnection<DB>>>,
}

impl<DB: sqlx::Database> ConnectionKeeper<DB> {
    pub fn new(pool: sqlx::Pool<DB>) -> Self {
        Self { pool, kept: std::sync::Mutex::new(None) }
    }

    /// The kept connection (with `true`: it may have died since), or else one from the pool.
    pub async fn take(&self) -> Result<(PoolConnection<DB>, bool), sqlx::Error> {
        let kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match kept {
            Some(conn) => Ok((conn, true)),
            None => Ok((self.fresh().await?, false)),
        }
    }

    /// A connection from the pool, which checks it first.
    pub async fn fresh(&self) -> Result<PoolConnection<DB>, sqlx::Error> {
        self.pool.acquire().await
    }
}
