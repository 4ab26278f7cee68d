//! The CLI's client side: `trigger` sends a signed sample notification and
//! `verify-subscription` a challenge, both checked as Twitch would (SPEC §7.8).

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;

use crate::config::EventSubSecret;
use crate::twitch::{samples, signature};

/// Twitch's CLI waits 10 s for a callback to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a target answered.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Body text.
    pub body: String,
}

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")
}

fn secret(raw: Option<&str>) -> anyhow::Result<EventSubSecret> {
    let raw = raw.context(
        "no secret: pass --secret or set EVENTSUB_SECRET (the server prints a generated one at start)",
    )?;
    EventSubSecret::parse(raw).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn send_signed(
    to: &str,
    secret: &EventSubSecret,
    message_type: &str,
    sub_type: &str,
    version: &str,
    body: String,
) -> anyhow::Result<Answer> {
    let id = uuid::Uuid::new_v4().to_string();
    let ts = signature::timestamp_now();
    let sig = signature::sign(secret.expose().as_bytes(), &id, &ts, body.as_bytes());
    let resp = http()?
        .post(to)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("eventsub-bridge/", env!("CARGO_PKG_VERSION")),
        )
        .header("Twitch-Eventsub-Message-Id", &id)
        .header("Twitch-Eventsub-Message-Retry", "0")
        .header("Twitch-Eventsub-Message-Type", message_type)
        .header("Twitch-Eventsub-Message-Timestamp", &ts)
        .header("Twitch-Eventsub-Message-Signature", sig)
        .header("Twitch-Eventsub-Subscription-Type", sub_type)
        .header("Twitch-Eventsub-Subscription-Version", version)
        .body(body)
        .send()
        .await
        .with_context(|| format!("sending to {to}"))?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// `trigger TYPE`: sends one signed sample; Ok only on a 2xx.
///
/// # Errors
/// Unknown type, bad secret or channel, transport failure, or a non-2xx answer.
pub async fn trigger(
    event_type: &str,
    channel: &str,
    to: &str,
    secret_raw: Option<&str>,
) -> anyhow::Result<Answer> {
    let secret = secret(secret_raw)?;
    let channel = crate::domain::ChannelName::parse(channel)
        .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
    let body =
        samples::notification(event_type, channel.as_str(), Utc::now()).with_context(|| {
            format!(
                "unknown type `{event_type}`; known: {}",
                samples::known_types().join(", ")
            )
        })?;
    let version = samples::version(event_type).unwrap_or("1");
    let answer = send_signed(
        to,
        &secret,
        "notification",
        event_type,
        version,
        body.to_string(),
    )
    .await?;
    if !(200..300).contains(&answer.status) {
        bail!("{to} answered {} {}", answer.status, answer.body);
    }
    Ok(answer)
}

/// `verify-subscription`: sends a challenge; Ok only when it is echoed as
/// Twitch requires (2xx, `text/plain`, the exact challenge).
///
/// # Errors
/// Transport failure or any failed check, named.
pub async fn verify_subscription(to: &str, secret_raw: Option<&str>) -> anyhow::Result<Answer> {
    let secret = secret(secret_raw)?;
    let challenge = uuid::Uuid::new_v4().simple().to_string();
    let body = samples::verification(&challenge, to, Utc::now());
    let answer = send_signed(
        to,
        &secret,
        "webhook_callback_verification",
        "channel.follow",
        "2",
        body.to_string(),
    )
    .await?;
    let mut failures = Vec::new();
    if !(200..300).contains(&answer.status) {
        failures.push(format!("status {} is not 2xx", answer.status));
    }
    let media = answer
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if !media.eq_ignore_ascii_case("text/plain") {
        failures.push(format!("content type `{media}` is not text/plain"));
    }
    if answer.body != challenge {
        failures.push("body is not exactly the challenge".to_owned());
    }
    if !failures.is_empty() {
        bail!("verification failed: {}", failures.join("; "));
    }
    Ok(answer)
}
