//! The `eventsub-bridge` binary: parse the command line, set up tracing,
//! run the subcommand. The only place that prints to stdout or exits.

use std::process::ExitCode;

use clap::Parser;
use eventsub_bridge::cli::{Cli, Command, ServeArgs};
use eventsub_bridge::config::Settings;
use eventsub_bridge::signals::StopSignals;
use eventsub_bridge::startup::Application;
use eventsub_bridge::{client, telemetry};
use tokio_util::sync::CancellationToken;

/// jemalloc instead of glibc's malloc: glibc gives memory back to the
/// kernel only from the top of a heap, so under steady churn (connections
/// and messages coming and going between the long-lived entries of the
/// bounded stores) its resident memory crept up while the live heap did
/// not; jemalloc's background threads purge freed pages within seconds.
/// It also allocates faster on the webhook path (docs/soak.md and
/// bench/README.md have the measurements).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(std::io::stderr);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        None => actix_web::rt::System::new().block_on(serve(ServeArgs::from_env())),
        Some(Command::Serve(args)) => actix_web::rt::System::new().block_on(serve(args)),
        Some(Command::Trigger(args)) => runtime.block_on(async {
            let a = client::trigger(
                &args.event_type,
                &args.channel,
                &args.target.to,
                args.target.secret.as_deref(),
            )
            .await?;
            println!("✔ {} {} → {}", args.event_type, args.channel, a.status);
            Ok(())
        }),
        Some(Command::VerifySubscription(args)) => runtime.block_on(async {
            let a = client::verify_subscription(&args.to, args.secret.as_deref()).await?;
            println!("✔ challenge echoed as text/plain with {}", a.status);
            Ok(())
        }),
        Some(Command::Subscriptions(args)) => runtime.block_on(async {
            for line in client::subscriptions(args).await? {
                println!("{line}");
            }
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            // SPEC §2: one line naming the variable and the rule.
            eprintln!("configuration error: {e}");
            std::process::exit(2);
        }
    };
    if settings.eventsub_secret_generated {
        // SPEC §7.5: printed once so that `trigger` can use it.
        println!(
            "local mode: generated EVENTSUB_SECRET={} (use it with: eventsub-bridge trigger channel.follow --secret …)",
            settings.eventsub_secret.expose()
        );
    }
    // Before listening: a signal that comes early drains too.
    let mut signals = StopSignals::install()?;
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone()).await?;
    tracing::info!(addr = %app.local_addr(), "listening");
    let stop = shutdown.clone();
    actix_web::rt::spawn(async move {
        let signal = signals.next().await;
        tracing::info!(signal, "shutting down: draining");
        stop.cancel();
        // An operator who sends a second one does not want to wait.
        let signal = signals.next().await;
        eprintln!("{signal} again: exiting without draining");
        std::process::exit(1);
    });
    app.run_until_stopped().await?;
    Ok(())
}
