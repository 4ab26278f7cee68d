//! The CLI's client side: `trigger` sends a signed sample notification and
//! `verify-subscription` a challenge, both checked as Twitch would (SPEC §7.8);
//! `subscriptions list|create|delete` manage the app's EventSub
//! subscriptions through the Helix client.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;

use crate::config::EventSubSecret;
use crate::eventsub::{samples, signature};

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

/// `subscriptions list|create|delete`: the lines to print.
///
/// # Errors
/// Configuration (credentials are required), an invalid streamer or type, or
/// the Helix failure.
pub async fn subscriptions(args: crate::cli::SubscriptionsArgs) -> anyhow::Result<Vec<String>> {
    use crate::cli::SubscriptionsAction;
    use crate::twitch::helix::{Created, HelixClient, HelixError, http_client};
    use crate::twitch::subscriptions::{condition_for, parse_type, version_for};

    let settings = crate::config::Settings::from_args(args.serve)
        .map_err(|e| anyhow::anyhow!("configuration error: {e}"))?;
    if matches!(settings.mode, crate::config::Mode::Local) {
        bail!("subscriptions needs TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET");
    }
    let helix = HelixClient::new(http_client(settings.limits.twitch_timeout)?, &settings)?;
    let mut out = Vec::new();
    match args.action {
        SubscriptionsAction::List => {
            let list = helix.list_subscriptions().await?;
            for s in &list.data {
                out.push(format!(
                    "{}  {:<40} {} v{}  {}  cost {}  {}  {}",
                    s.id,
                    s.status,
                    s.sub_type,
                    s.version,
                    s.condition,
                    s.cost,
                    s.created_at.as_deref().unwrap_or("-"),
                    s.callback().unwrap_or("-"),
                ));
            }
            out.push(format!(
                "{} subscriptions, total cost {} of {}",
                list.data.len(),
                list.costs.total_cost,
                list.costs.max_total_cost
            ));
        }
        SubscriptionsAction::Create { streamer, types } => {
            let streamer = crate::domain::ChannelName::parse(streamer.trim())
                .map_err(|e| anyhow::anyhow!("streamer: {e}"))?;
            let types: Vec<String> = match types {
                Some(raw) => raw
                    .split(',')
                    .filter(|t| !t.trim().is_empty())
                    .map(parse_type)
                    .collect::<Result<_, _>>()?,
                None => settings.event_types.clone(),
            };
            let user = helix
                .users_by_login(&[streamer.as_str()])
                .await?
                .into_iter()
                .next()
                .with_context(|| format!("Twitch has no user named {streamer}"))?;
            for t in &types {
                let condition = condition_for(t, &user.id);
                match helix
                    .create_subscription(t, version_for(t), &condition)
                    .await?
                {
                    Created::New(s, _) => {
                        out.push(format!("created {} {} ({})", s.id, s.sub_type, s.status));
                    }
                    Created::Existing(Some(s)) => {
                        out.push(format!("exists  {} {} ({})", s.id, s.sub_type, s.status));
                    }
                    Created::Existing(None) => out.push(format!("exists  {t} (id not listed)")),
                }
            }
        }
        SubscriptionsAction::Delete { id } => match helix.delete_subscription(&id).await {
            Ok(()) => out.push(format!("deleted {id}")),
            Err(HelixError::NotFound(_)) => bail!("Twitch has no subscription {id}"),
            Err(e) => return Err(e.into()),
        },
    }
    Ok(out)
}
