//! The Prometheus registry and every named metric (SPEC §7.15). Cloning is
//! cheap: the metric handles share their storage.

use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric the bridge exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket + SSE connections.
    pub connections: IntGauge,
    /// (connection, channel) subscriptions.
    pub channel_subscriptions: IntGauge,
    /// Webhooks by outcome (accepted, duplicate, challenge, revocation, rejected_*).
    pub webhooks: IntCounterVec,
    /// Messages published.
    pub messages_published: IntCounter,
    /// Messages handed to viewer queues.
    pub deliveries: IntCounter,
    /// Viewers closed because their queue overflowed.
    pub slow_consumers: IntCounter,
    /// Events whose broadcaster could not be routed.
    pub unroutable_events: IntCounter,
    /// Broker operations that failed.
    pub broker_errors: IntCounter,
    /// Upgrades refused at `MAX_CONNECTIONS`.
    pub rejected_connections: IntCounter,
    /// Interactive rooms (SPEC §9); behind an `Arc`, as every broker holds
    /// a clone of `Metrics`.
    pub rooms: std::sync::Arc<RoomMetricSet>,
    /// The EventSub WebSocket transport (SPEC §10), behind an `Arc` too.
    pub eventsub_ws: std::sync::Arc<EventSubWsMetricSet>,
}

/// The EventSub WebSocket metrics, per streamer whose socket this instance
/// holds.
#[derive(Clone)]
pub struct EventSubWsMetricSet {
    /// 1 while this instance holds the streamer's socket and it is
    /// subscribed, by channel.
    pub connected: IntGaugeVec,
    /// Sockets replaced, by channel and reason (`keepalive_timeout`,
    /// `close_4000`…, `session_reconnect`, `network_error`).
    pub reconnects: IntCounterVec,
    /// Seconds since the streamer's socket last received a message.
    pub last_message_age: GaugeVec,
    /// Notifications and revocations by outcome (the webhooks' outcomes,
    /// plus `dropped` and `invalid`).
    pub messages: IntCounterVec,
}

/// The room metrics.
#[derive(Clone)]
pub struct RoomMetricSet {
    /// Rooms with members on this instance.
    pub open: IntGauge,
    /// Room connections on this instance.
    pub members: IntGauge,
    /// Room frames received, by type (`other` for custom types).
    pub frames_in: IntCounterVec,
    /// Room frames queued to members, by type.
    pub frames_out: IntCounterVec,
    /// Poll, counter and presence updates replaced by a newer one before
    /// they were sent (coalescing).
    pub coalesced: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|_| unreachable_metric());
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|_| unreachable_metric());
    let _ = registry.register(Box::new(g.clone()));
    g
}

#[expect(
    clippy::panic,
    reason = "metric names are constants checked by the unit test"
)]
fn unreachable_metric<T>() -> T {
    panic!("invalid metric definition")
}

fn eventsub_ws_metrics(registry: &Registry) -> std::sync::Arc<EventSubWsMetricSet> {
    let by_channel = IntGaugeVec::new(
        Opts::new(
            "eventsub_bridge_eventsub_ws_connected",
            "1 while this instance holds the streamer's EventSub socket and it is subscribed",
        ),
        &["channel"],
    )
    .unwrap_or_else(|_| unreachable_metric());
    let _ = registry.register(Box::new(by_channel.clone()));
    let reconnects = IntCounterVec::new(
        Opts::new(
            "eventsub_bridge_eventsub_ws_reconnects_total",
            "EventSub sockets replaced, by channel and reason",
        ),
        &["channel", "reason"],
    )
    .unwrap_or_else(|_| unreachable_metric());
    let _ = registry.register(Box::new(reconnects.clone()));
    let age = GaugeVec::new(
        Opts::new(
            "eventsub_bridge_eventsub_ws_last_message_age_seconds",
            "Seconds since the streamer's EventSub socket last received a message",
        ),
        &["channel"],
    )
    .unwrap_or_else(|_| unreachable_metric());
    let _ = registry.register(Box::new(age.clone()));
    let messages = IntCounterVec::new(
        Opts::new(
            "eventsub_bridge_eventsub_ws_messages_total",
            "EventSub WebSocket notifications and revocations by outcome",
        ),
        &["outcome"],
    )
    .unwrap_or_else(|_| unreachable_metric());
    let _ = registry.register(Box::new(messages.clone()));
    std::sync::Arc::new(EventSubWsMetricSet {
        connected: by_channel,
        reconnects,
        last_message_age: age,
        messages,
    })
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let webhooks = IntCounterVec::new(
            Opts::new(
                "eventsub_bridge_webhooks_total",
                "EventSub webhooks by outcome",
            ),
            &["outcome"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let _ = registry.register(Box::new(webhooks.clone()));
        let by_type = |name: &str, help: &str| {
            let v = IntCounterVec::new(Opts::new(name, help), &["type"])
                .unwrap_or_else(|_| unreachable_metric());
            let _ = registry.register(Box::new(v.clone()));
            v
        };
        let room_frames_in = by_type(
            "eventsub_bridge_room_frames_in_total",
            "Room frames received, by type",
        );
        let room_frames_out = by_type(
            "eventsub_bridge_room_frames_out_total",
            "Room frames queued to members, by type",
        );
        let eventsub_ws = eventsub_ws_metrics(&registry);
        Self {
            eventsub_ws,
            connections: gauge(
                &registry,
                "eventsub_bridge_connections",
                "Open WebSocket and SSE connections",
            ),
            channel_subscriptions: gauge(
                &registry,
                "eventsub_bridge_channel_subscriptions",
                "Channel subscriptions across all connections",
            ),
            webhooks,
            messages_published: counter(
                &registry,
                "eventsub_bridge_messages_published_total",
                "Messages published",
            ),
            deliveries: counter(
                &registry,
                "eventsub_bridge_deliveries_total",
                "Messages handed to viewer queues",
            ),
            slow_consumers: counter(
                &registry,
                "eventsub_bridge_slow_consumers_total",
                "Viewers closed because they could not keep up",
            ),
            unroutable_events: counter(
                &registry,
                "eventsub_bridge_unroutable_events_total",
                "Events or revocations for an unknown broadcaster",
            ),
            broker_errors: counter(
                &registry,
                "eventsub_bridge_broker_errors_total",
                "Broker operations that failed",
            ),
            rejected_connections: counter(
                &registry,
                "eventsub_bridge_rejected_connections_total",
                "Connections refused at MAX_CONNECTIONS",
            ),
            rooms: std::sync::Arc::new(RoomMetricSet {
                open: gauge(
                    &registry,
                    "eventsub_bridge_rooms_open",
                    "Rooms with members on this instance",
                ),
                members: gauge(
                    &registry,
                    "eventsub_bridge_room_members",
                    "Room connections on this instance",
                ),
                frames_in: room_frames_in,
                frames_out: room_frames_out,
                coalesced: counter(
                    &registry,
                    "eventsub_bridge_room_coalesced_total",
                    "Room poll, counter and presence updates replaced before they were sent",
                ),
            }),
            registry,
        }
    }

    /// Counts a webhook outcome.
    pub fn webhook(&self, outcome: &str) {
        self.webhooks.with_label_values(&[outcome]).inc();
    }

    /// Registers a feature's own metrics (e.g. `alerts::metrics`).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        let _ = self.registry.register(collector);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_metric_is_exported() {
        let m = Metrics::new();
        m.webhook("accepted");
        let text = m.render();
        for name in [
            "eventsub_bridge_connections",
            "eventsub_bridge_channel_subscriptions",
            "eventsub_bridge_webhooks_total",
            "eventsub_bridge_messages_published_total",
            "eventsub_bridge_deliveries_total",
            "eventsub_bridge_slow_consumers_total",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
