//! The binary: configuration errors at start, the printed secret, and the
//! `trigger` / `verify-subscription` commands against a running server.

use std::process::Command;
use std::time::Duration;

use eventsub_bridge::eventsub::samples;

use crate::helpers::{SECRET, spawn_app};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eventsub-bridge"));
    for var in [
        "BIND",
        "PUBLIC_URL",
        "EVENTSUB_SECRET",
        "TWITCH_CLIENT_ID",
        "TWITCH_CLIENT_SECRET",
        "REDIS_URL",
        "SESSION_KEY",
        "PUBLISH_TOKEN",
        "ADMIN_TOKEN",
        "EVENT_TYPES",
        "HISTORY_LEN",
        "MAX_CONNECTIONS",
    ] {
        c.env_remove(var);
    }
    c
}

#[test]
fn an_invalid_variable_stops_the_process_with_one_line_naming_it() {
    for (var, value, expect) in [
        ("EVENTSUB_SECRET", "short", "EVENTSUB_SECRET"),
        ("PUBLIC_URL", "::nope", "PUBLIC_URL"),
        ("SESSION_KEY", "abcd", "SESSION_KEY"),
        ("HISTORY_LEN", "lots", "HISTORY_LEN"),
        ("REDIS_URL", "http://localhost", "REDIS_URL"),
    ] {
        let out = bin()
            .arg("serve")
            .env("BIND", "127.0.0.1:0")
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{var}: {err}");
        assert!(lines[0].contains(expect), "{var}: {err}");
        assert!(!err.contains(value) || value.len() < 6 || var != "SESSION_KEY");
    }
}

#[test]
fn a_configured_secret_is_never_printed_and_a_generated_one_is_printed_once() {
    use std::io::{BufRead, BufReader};
    let run = |secret: Option<&str>| {
        let mut c = bin();
        c.arg("serve")
            .env("BIND", "127.0.0.1:0")
            .env("RUST_LOG", "debug");
        if let Some(s) = secret {
            c.env("EVENTSUB_SECRET", s);
        }
        let mut child = c
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the "listening" log line, then stop it.
        let stderr = child.stderr.take().unwrap();
        let mut err_text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            err_text.push_str(&line);
            err_text.push('\n');
            if line.contains("listening") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), err_text)
    };
    let (out, err) = run(Some("configured-secret-xyz"));
    assert!(!out.contains("configured-secret-xyz") && !err.contains("configured-secret-xyz"));
    let (out, _) = run(None);
    assert_eq!(out.matches("EVENTSUB_SECRET=").count(), 1, "{out}");
}

#[actix_web::test]
async fn trigger_sends_every_sample_type_correctly_signed() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let to = app.url("/api/callback");
    for t in samples::known_types() {
        let a = eventsub_bridge::client::trigger(t, "teststreamer", &to, Some(SECRET))
            .await
            .unwrap_or_else(|e| panic!("{t}: {e:#}"));
        assert_eq!(a.status, 204, "{t}");
    }
    let h = app.history("teststreamer", "?limit=100").await;
    assert_eq!(h.len(), samples::known_types().len());
    for m in &h {
        assert_ne!(m["text"], m["type"], "each sample gets a sentence: {m}");
    }
}

#[actix_web::test]
async fn the_trigger_command_exits_0_only_when_the_bridge_accepts() {
    let app = spawn_app(|_| {}).await;
    app.login_as("viewer").await;
    let to = app.url("/api/callback");
    let to1 = to.clone();
    let ok = tokio::task::spawn_blocking(move || {
        bin()
            .args([
                "trigger",
                "channel.follow",
                "--channel",
                "TestStreamer",
                "--to",
                &to1,
                "--secret",
                SECRET,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let h = app.history("teststreamer", "").await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["type"], "channel.follow");
    let to2 = app.url("/api/callback");
    let bad = tokio::task::spawn_blocking(move || {
        bin()
            .args([
                "trigger",
                "channel.follow",
                "--to",
                &to2,
                "--secret",
                "the-wrong-secret",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("403"));
}

#[actix_web::test]
async fn verify_subscription_passes_against_the_bridge_and_fails_elsewhere() {
    let app = spawn_app(|_| {}).await;
    let to = app.url("/api/callback");
    eventsub_bridge::client::verify_subscription(&to, Some(SECRET))
        .await
        .unwrap();
    // /healthz answers 405 to a POST: not an echo.
    let err = eventsub_bridge::client::verify_subscription(&app.url("/healthz"), Some(SECRET))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("verification failed"), "{err}");
    let err = eventsub_bridge::client::verify_subscription(&to, Some("wrong-secret-123"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}
