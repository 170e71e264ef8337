//! `/metrics` in Prometheus text: requests by route and status, a latency histogram per route,
//! events appended by this process, and how far the read model trails the log.

use std::{collections::BTreeMap, fmt::Write, sync::atomic::Ordering, sync::Mutex, time::Duration};

use actix_web::{web, HttpResponse};

use super::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// Records one answered request; `route` is the matched pattern (never the raw path, so ids
    /// do not blow up the label set).
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.into(), method.into(), status))
            .or_default() += 1;
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let histogram = latency.entry(route.to_string()).or_default();
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    fn render(&self, app: &AppState, outbox: &Counts, deliveries: &Counts) -> String {
        let mut out = String::new();
        out.push_str("# HELP roleledger_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE roleledger_http_requests_total counter\n");
        for ((route, method, status), count) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "roleledger_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP roleledger_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE roleledger_http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for (count, bound) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "roleledger_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "roleledger_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "roleledger_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "roleledger_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let committed = app.store.known_committed_position();
        let folded = app.app.projections().position();
        let snapshots = app.app.snapshot_stats();
        let gauges = [
            (
                "roleledger_events_appended_total",
                "counter",
                "Events appended by this process.",
                app.store.events_appended() as i64,
            ),
            (
                "roleledger_log_position",
                "gauge",
                "The highest log position this process knows to be committed.",
                committed,
            ),
            (
                "roleledger_read_model_position",
                "gauge",
                "The log position the in-memory projections have folded.",
                folded,
            ),
            (
                "roleledger_projection_lag_events",
                "gauge",
                "Committed events not yet folded into the projections.",
                (committed - folded).max(0),
            ),
            (
                "roleledger_snapshot_position",
                "gauge",
                "The position of the newest snapshot of the read model this process stored or loaded (0: none).",
                snapshots.newest.load(Ordering::Relaxed),
            ),
            (
                "roleledger_start_snapshot_position",
                "gauge",
                "The position of the snapshot this process's start loaded (0: it folded the whole log).",
                snapshots.loaded_at.load(Ordering::Relaxed),
            ),
            (
                "roleledger_start_folded_events",
                "gauge",
                "The events this process's start folded (beyond the snapshot it loaded).",
                snapshots.folded_at_start.load(Ordering::Relaxed),
            ),
            (
                "roleledger_snapshots_skipped_total",
                "counter",
                "Snapshots of the read model left out because the machine could not hold a copy of the model or one row its body.",
                snapshots.skipped.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        if let Some(standby) = app.app.standby() {
            let standby_gauges = [
                (
                    "roleledger_read_database_position",
                    "The log position the hot standby (--read-database) has replayed.",
                    standby.position() as f64,
                ),
                (
                    "roleledger_read_database_lag_seconds",
                    "How long the oldest event the primary holds and the standby does not has been known.",
                    standby.lag_seconds(),
                ),
                (
                    "roleledger_read_database_bypassed",
                    "1 while the standby lags more than a second and the read model follows the primary.",
                    f64::from(u8::from(standby.reading_primary())),
                ),
            ];
            for (name, help, value) in standby_gauges {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
            }
        }
        by_state(&mut out, "roleledger_outbox_mails", "Mails in the outbox", ["pending", "sent", "dead"], outbox);
        let webhooks = "Webhook deliveries in the webhooks' outbox";
        by_state(&mut out, "roleledger_webhook_deliveries", webhooks, ["pending", "delivered", "dead"], deliveries);
        let delivery = &app.delivery;
        let hooks = &app.webhook_stats;
        let counters = [
            ("roleledger_mail_sent_total", "Mails this process sent.", delivery.sent.load(Ordering::Relaxed)),
            (
                "roleledger_mail_failed_total",
                "Failed sending attempts of this process.",
                delivery.failed.load(Ordering::Relaxed),
            ),
            ("roleledger_mail_dead_total", "Mails this process gave up on.", delivery.dead.load(Ordering::Relaxed)),
            (
                "roleledger_webhook_delivered_total",
                "Webhook deliveries this process made (2xx answers).",
                hooks.delivered.load(Ordering::Relaxed),
            ),
            (
                "roleledger_webhook_failed_total",
                "Failed webhook attempts of this process.",
                hooks.failed.load(Ordering::Relaxed),
            ),
            (
                "roleledger_webhook_dead_total",
                "Webhook deliveries this process gave up on.",
                hooks.dead.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        out
    }
}

type Counts = std::collections::BTreeMap<String, i64>;

/// A gauge of rows by state (pending is the depth).
fn by_state(out: &mut String, name: &str, help: &str, states: [&str; 3], counts: &Counts) {
    let _ = writeln!(out, "# HELP {name} {help} by state (pending is the depth).\n# TYPE {name} gauge");
    for state in states {
        let count = counts.get(state).copied().unwrap_or(0);
        let _ = writeln!(out, "{name}{{state=\"{state}\"}} {count}");
    }
}

#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "metrics", security(()),
    responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String)))]
pub async fn metrics(app: web::Data<AppState>) -> HttpResponse {
    // The outbox's depth comes from the database; without it, the rest still answers.
    let outbox = app.store.outbox_counts().await.unwrap_or_default();
    let deliveries = app.store.delivery_counts().await.unwrap_or_default();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(app.metrics.render(&app, &outbox, &deliveries))
}
