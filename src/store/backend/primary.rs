//! Several PostgreSQL hosts in libpq's form
//! (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`): the pool connects to the
//! host that accepts writes, and a watcher points it at another when that one stops accepting
//! them (it died, or an HA manager demoted it). Meanwhile writes fail fast as unavailable (503
//! with Retry-After), never hang: connecting is bounded by the pool's acquire timeout.

use std::{
    str::FromStr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlx::{postgres::PgConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::watch;

use crate::store::error::StoreError;

/// How often the watcher asks the current host whether it still accepts writes.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long one host may take to answer a probe before it counts as gone.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a start waits for some host to accept writes (an HA manager may be electing one).
const START_WAIT: Duration = Duration::from_secs(30);

/// The hosts a URL names, and which of them the pool connects to now.
pub(crate) struct Hosts {
    candidates: Vec<PgConnectOptions>,
    /// The host the pool connects to, and when it was chosen: connections made before then (to a
    /// host that may since have been demoted) are discarded by the pool's acquire check.
    current: Mutex<(usize, Instant)>,
    /// Raised each time the pool moves to another host (the commit listener moves with it).
    moved: watch::Sender<u64>,
}

impl Hosts {
    /// The options of each host of `url`, in order; the URL's other parts apply to all of them.
    /// `target_session_attrs` is understood, not passed on: the server always needs the host that
    /// accepts writes (`read-write`), and refuses any other value for several hosts.
    pub fn parse(url: &str) -> Result<Vec<PgConnectOptions>, StoreError> {
        let unsupported = || StoreError::UnsupportedUrl(url.to_string());
        let (scheme, rest) = url.split_once("://").ok_or_else(unsupported)?;
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((credentials, rest)) => (format!("{credentials}@"), rest),
            None => (String::new(), rest),
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (hosts, tail) = rest.split_at(split);
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let mut attrs = None;
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| match pair.strip_prefix("target_session_attrs=") {
                Some(value) => {
                    attrs = Some(value);
                    false
                }
                None => true,
            })
            .collect();
        let hosts: Vec<&str> = hosts.split(',').collect();
        if hosts.len() > 1 && attrs.is_some_and(|value| value != "read-write" && value != "primary") {
            return Err(unsupported());
        }
        let query = if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) };
        hosts
            .iter()
            .map(|host| {
                if host.is_empty() {
                    return Err(unsupported());
                }
                Ok(PgConnectOptions::from_str(&format!("{scheme}://{credentials}{host}{path}{query}"))?)
            })
            .collect()
    }

    /// Waits (up to `START_WAIT`) for a host that accepts writes.
    pub async fn find(candidates: Vec<PgConnectOptions>) -> Result<Arc<Hosts>, StoreError> {
        let started = Instant::now();
        loop {
            match first_writable(&candidates, 0).await {
                Ok(index) => {
                    let current = Mutex::new((index, Instant::now()));
                    return Ok(Arc::new(Hosts { candidates, current, moved: watch::Sender::new(0) }));
                }
                Err(error) if started.elapsed() >= START_WAIT => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "no host accepts writes yet; trying again");
                    tokio::time::sleep(CHECK_EVERY).await;
                }
            }
        }
    }

    pub fn current_options(&self) -> PgConnectOptions {
        let (index, _) = *self.lock();
        self.candidates[index].clone()
    }

    /// Whether a pooled connection of `age` was made to the current host.
    pub fn is_current(&self, age: Duration) -> bool {
        let (_, chosen) = *self.lock();
        Instant::now().checked_sub(age).is_none_or(|made| made >= chosen)
    }

    /// Changes each time the pool moves to another host.
    pub fn moves(&self) -> watch::Receiver<u64> {
        self.moved.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks the current host every `CHECK_EVERY`; once it is gone or refuses writes, looks for
    /// the host that accepts them (all of them, again and again) and points `pool` there.
    pub async fn watch(self: Arc<Self>, pool: PgPool, mut alive: watch::Receiver<()>) {
        let mut probe: Option<PgConnection> = None;
        loop {
            tokio::select! {
                _ = alive.changed() => return, // the last handle is gone
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let (index, _) = *self.lock();
            if probe.is_none() {
                probe = connect(&self.candidates[index]).await.ok();
            }
            if let Some(conn) = probe.as_mut() {
                if accepts_writes(conn).await.unwrap_or(false) {
                    continue;
                }
            }
            probe = None;
            tracing::warn!(host = %host_of(&self.candidates[index]), "the database host stopped accepting writes; looking for the one that does");
            loop {
                match first_writable(&self.candidates, index).await {
                    Ok(found) => {
                        *self.lock() = (found, Instant::now());
                        pool.set_connect_options(self.candidates[found].clone());
                        self.moved.send_modify(|moves| *moves += 1);
                        tracing::warn!(host = %host_of(&self.candidates[found]), "writing to the host that accepts writes");
                        break;
                    }
                    Err(error) => tracing::debug!(%error, "no host accepts writes yet"),
                }
                tokio::select! {
                    _ = alive.changed() => return,
                    _ = tokio::time::sleep(CHECK_EVERY) => {}
                }
            }
        }
    }
}

fn host_of(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(options))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}

/// libpq's `read-write`: not a standby, and not read-only by default.
async fn accepts_writes(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let query = sqlx::query_scalar::<_, bool>(
        "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
    )
    .fetch_one(conn);
    tokio::time::timeout(PROBE_TIMEOUT, query).await.map_err(|_| sqlx::Error::PoolTimedOut)?
}

/// The first host, starting after `after` (the one just lost goes last), that accepts writes.
async fn first_writable(candidates: &[PgConnectOptions], after: usize) -> Result<usize, StoreError> {
    let mut last_error = None;
    for offset in 1..=candidates.len() {
        let index = (after + offset) % candidates.len();
        match connect(&candidates[index]).await {
            Ok(mut conn) => {
                let writable = accepts_writes(&mut conn).await;
                let _ = conn.close().await;
                match writable {
                    Ok(true) => return Ok(index),
                    Ok(false) => {}
                    Err(error) => last_error = Some(error),
                }
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        Some(error) => error.into(),
        None => StoreError::NoWritableHost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_host_and_keeps_the_rest_of_the_url() {
        let hosts =
            Hosts::parse("postgres://app:pw@h1:5433,h2,h3:5435/rl?target_session_attrs=read-write&sslmode=disable")
                .unwrap();
        let named: Vec<String> = hosts.iter().map(host_of).collect();
        assert_eq!(named, ["h1:5433", "h2:5432", "h3:5435"]);
        assert!(hosts.iter().all(|options| options.get_database() == Some("rl")));
        assert!(hosts.iter().all(|options| options.get_username() == "app"));
    }

    #[test]
    fn refuses_other_session_attributes_and_empty_hosts() {
        for bad in ["postgres://u@h1,h2/db?target_session_attrs=read-only", "postgres://u@h1,,h2/db"] {
            assert!(matches!(Hosts::parse(bad), Err(StoreError::UnsupportedUrl(_))), "{bad}");
        }
        assert_eq!(Hosts::parse("postgres://u@h1/db?target_session_attrs=any").unwrap().len(), 1);
    }
}
