//! Redis for tests: the machine's shared Redis at 127.0.0.1:6379 (required,
//! never skipped), and throwaway `redis-server` processes that a test may
//! stop and start again without disturbing anyone else.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The shared Redis every Redis-mode test uses.
pub const SHARED_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("esb-test-{}", uuid::Uuid::new_v4().simple())
}

async fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Fails the test with a clear message when the shared Redis is not there.
pub async fn require_shared_redis() -> &'static str {
    if let Err(e) = ping(SHARED_REDIS_URL).await {
        panic!(
            "Redis-mode tests need a Redis at {SHARED_REDIS_URL} ({e}); \
             start one with `redis-server --daemonize yes` (.ci/run does this)"
        );
    }
    SHARED_REDIS_URL
}

/// Deletes every key under `prefix` (best effort, at the end of a test).
pub async fn cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// The `process_id` of the Redis answering at `url`.
async fn server_pid(url: &str) -> Result<u32, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut conn)
            .await
    };
    let info = match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("timed out".into()),
    };
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .ok_or_else(|| "INFO has no process_id".into())
}

/// A private `redis-server` on a free port, without persistence.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let mut last = String::new();
        // Tests of other processes pick free ports too: a port can be taken
        // between our pick and redis-server's bind. Then pick another.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("no free port");
            let mut server = Self { port, child: None };
            match server.spawn().await {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("no private redis-server could start: {last}");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts redis-server on `self.port` and waits until *it* answers there
    /// (not another process's Redis that took the port first).
    async fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it (apt-get install redis-server)")
            });
        let ours = child.id();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited: {status}",
                    self.port
                ));
            }
            match server_pid(&self.url()).await {
                Ok(pid) if Some(pid) == ours => {
                    self.child = Some(child);
                    return Ok(());
                }
                Ok(pid) => {
                    let _ = child.kill().await;
                    return Err(format!("port {} is taken by redis-server {pid}", self.port));
                }
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    let _ = child.kill().await;
                    return Err(format!(
                        "redis-server on port {} did not answer within 10 s: {e}",
                        self.port
                    ));
                }
            }
        }
    }

    /// Kills the server (abruptly, like a crash) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stalls the server (`SIGSTOP`): connections stay open and what is
    /// sent to it waits in the socket, to run when it is resumed, as with a
    /// Redis that hangs or a network that stops forwarding.
    pub async fn pause(&self) {
        self.signal("-STOP").await;
    }

    /// Resumes a paused server (`SIGCONT`): it runs whatever it was sent.
    pub async fn resume(&self) {
        self.signal("-CONT").await;
    }

    async fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("redis-server is running");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts it again on the same port (empty: nothing was persisted).
    pub async fn restart(&mut self) {
        self.stop().await;
        if let Err(e) = self.spawn().await {
            panic!("restarting the private redis-server: {e}");
        }
    }
}
