//! The alert metrics (SPEC §8): enqueued by kind, shown, dropped by
//! reason, queue depth, open overlays. Registered in the process's one
//! registry (`crate::metrics`).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

use crate::metrics::Metrics;

/// Why an alert never reached the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The waiting queue was at `ALERT_QUEUE_LEN` (EventSub alerts).
    QueueFull,
    /// Its kind is disabled.
    Disabled,
    /// Its amount was below the kind's `min_amount`.
    BelowMinAmount,
    /// The streamer cleared the queue.
    Cleared,
}

impl DropReason {
    /// The metric label (and the API's `filtered` value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Disabled => "disabled",
            Self::BelowMinAmount => "below_min_amount",
            Self::Cleared => "cleared",
        }
    }
}

/// The alert metrics.
#[derive(Debug, Clone)]
pub struct AlertMetrics {
    /// Alerts queued, by kind (custom kinds share `custom`).
    pub enqueued: IntCounterVec,
    /// Alerts acked by an overlay.
    pub shown: IntCounter,
    /// Alerts skipped by the streamer.
    pub skipped: IntCounter,
    /// Alerts dropped, by reason.
    pub dropped: IntCounterVec,
    /// Waiting alerts of the channel, seen at each enqueue.
    pub queue_depth: Histogram,
    /// Open overlay sockets on this instance.
    pub overlays: IntGauge,
}

fn must<T>(r: Result<T, prometheus::Error>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => invalid(&e),
    }
}

#[expect(
    clippy::panic,
    reason = "metric names are constants checked by the unit test"
)]
fn invalid(e: &prometheus::Error) -> ! {
    panic!("invalid alert metric: {e}")
}

impl AlertMetrics {
    /// Creates the metrics and registers them in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        let m = Self {
            enqueued: must(IntCounterVec::new(
                Opts::new(
                    "eventsub_bridge_alerts_enqueued_total",
                    "Alerts queued, by kind",
                ),
                &["kind"],
            )),
            shown: must(IntCounter::new(
                "eventsub_bridge_alerts_shown_total",
                "Alerts an overlay showed for their duration and acked",
            )),
            skipped: must(IntCounter::new(
                "eventsub_bridge_alerts_skipped_total",
                "Alerts the streamer skipped",
            )),
            dropped: must(IntCounterVec::new(
                Opts::new(
                    "eventsub_bridge_alerts_dropped_total",
                    "Alerts that never reached the screen, by reason",
                ),
                &["reason"],
            )),
            queue_depth: must(Histogram::with_opts(
                HistogramOpts::new(
                    "eventsub_bridge_alert_queue_depth",
                    "Alerts waiting in the channel's queue after each enqueue",
                )
                .buckets(vec![
                    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
                ]),
            )),
            overlays: must(IntGauge::new(
                "eventsub_bridge_overlays",
                "Open alert overlay sockets on this instance",
            )),
        };
        metrics.register(Box::new(m.enqueued.clone()));
        metrics.register(Box::new(m.shown.clone()));
        metrics.register(Box::new(m.skipped.clone()));
        metrics.register(Box::new(m.dropped.clone()));
        metrics.register(Box::new(m.queue_depth.clone()));
        metrics.register(Box::new(m.overlays.clone()));
        m
    }

    /// Counts a dropped alert.
    pub fn drop_one(&self, reason: DropReason) {
        self.dropped.with_label_values(&[reason.as_str()]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_metrics_are_exported() {
        let metrics = Metrics::new();
        let m = AlertMetrics::new(&metrics);
        m.enqueued.with_label_values(&["follow"]).inc();
        m.drop_one(DropReason::QueueFull);
        m.queue_depth.observe(1.0);
        let text = metrics.render();
        for name in [
            "eventsub_bridge_alerts_enqueued_total",
            "eventsub_bridge_alerts_shown_total",
            "eventsub_bridge_alerts_dropped_total",
            "eventsub_bridge_alert_queue_depth",
            "eventsub_bridge_overlays",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
