//! The PostgreSQL cluster of `scripts/cluster` for one scenario: three database hosts under Patroni
//! (a primary, a synchronous standby, an asynchronous replica that is never promoted) and etcd,
//! each in its own network namespace on a bridge of this machine; two more namespaces for the
//! servers. Brought up by `up`, taken down when dropped. Needs root, PostgreSQL 15's programs and
//! Debian's patroni and etcd-server (the script installs the last two): without them the scenario
//! fails, saying what is missing.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::Duration,
};

use serde_json::Value;

use crate::harness::Host;

/// The cluster's name (its namespaces are `rlt-db1`, …) and network: apart from a cluster that a
/// person brought up with the script's defaults.
const NAME: &str = "rlt";
const NET: &str = "10.78.0";
/// Patroni's leader key lives 10 s, and it looks every 2 s (`scripts/cluster`): a primary that
/// is gone is replaced within the TTL, the loop, and the promotion.
pub const PROMISED_FAILOVER: Duration = Duration::from_secs(10 + 2 + 3);
/// A server's port on its test host.
pub const SERVER_PORT: u16 = 8080;

pub struct Cluster {
    http: reqwest::Client,
}

impl Cluster {
    pub const DATABASE_HOSTS: [&'static str; 3] = ["db1", "db2", "db3"];
    /// The asynchronous replica (`nofailover`, `nosync`).
    pub const REPLICA: &'static str = "db3";

    pub fn up() -> Cluster {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("an HTTP client");
        let cluster = Cluster { http };
        // What an interrupted run left.
        cluster.script(&["down"]);
        let output = cluster.script(&["databases"]);
        assert!(
            output.status.success(),
            "scripts/cluster databases failed (root, PostgreSQL 15, patroni and etcd-server are needed):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        cluster
    }

    fn script(&self, args: &[&str]) -> Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster");
        Command::new(script)
            .args(args)
            .env("ROLELEDGER_CLUSTER_NAME", NAME)
            .env("ROLELEDGER_CLUSTER_NET", NET)
            .output()
            .expect("scripts/cluster runs")
    }

    fn run(&self, args: &[&str]) {
        let output = self.script(args);
        assert!(output.status.success(), "scripts/cluster {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// A test host's address (`bridge`: this machine's own on the bridge).
    pub fn address(host: &str) -> String {
        let last = match host {
            "bridge" => 1,
            "db1" => 11,
            "db2" => 12,
            "db3" => 13,
            "app1" => 21,
            "app2" => 22,
            _ => panic!("no test host {host}"),
        };
        format!("{NET}.{last}")
    }

    /// Where a server runs: `app1` or `app2`.
    pub fn server_host(host: &str) -> Host {
        Host { namespace: Some(format!("{NAME}-{host}")), ip: Self::address(host) }
    }

    pub fn admin_url(host: &str) -> String {
        format!("postgres://postgres@{}:5432/postgres", Self::address(host))
    }

    /// `database` on one host.
    pub fn url_on(host: &str, database: &str) -> String {
        format!("postgres://postgres@{}:5432/{database}", Self::address(host))
    }

    /// `database` on whichever host takes writes.
    pub fn multi_host_url(database: &str) -> String {
        let hosts: Vec<String> =
            Self::DATABASE_HOSTS.iter().map(|host| format!("{}:5432", Self::address(host))).collect();
        format!("postgres://postgres@{}/{database}?target_session_attrs=read-write", hosts.join(","))
    }

    /// The primary, as Patroni says (`GET /primary` answers 200 on its host alone).
    pub async fn leader(&self) -> Option<&'static str> {
        for host in Self::DATABASE_HOSTS {
            let url = format!("http://{}:8008/primary", Self::address(host));
            if self.http.get(url).send().await.is_ok_and(|answer| answer.status().is_success()) {
                return Some(host);
            }
        }
        None
    }

    /// Patroni's members (name, role, state, timeline, lag), asked of the primary's Patroni.
    pub async fn members(&self) -> Vec<Value> {
        let Some(leader) = self.leader().await else { return Vec::new() };
        let url = format!("http://{}:8008/cluster", Self::address(leader));
        let cluster: Option<Value> = match self.http.get(url).send().await {
            Ok(answer) => answer.text().await.ok().and_then(|text| serde_json::from_str(&text).ok()),
            Err(_) => None,
        };
        cluster.and_then(|cluster| cluster["members"].as_array().cloned()).unwrap_or_default()
    }

    /// SIGKILL to `host`'s postmaster.
    pub fn kill9(&self, host: &str) {
        self.run(&["kill9", host]);
    }

    /// `host`'s link to the bridge down: it can reach nobody, and nobody it.
    pub fn cut(&self, host: &str) {
        self.run(&["cut", host]);
    }

    pub fn mend(&self, host: &str) {
        self.run(&["mend", host]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let output = self.script(&["down"]);
        if !output.status.success() {
            eprintln!("scripts/cluster down: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
}
