//! Running a service binary as an operator would: configured only by
//! environment variables.

use std::process::{Child, Command, Stdio};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts `binary` with exactly `vars` (plus `PATH`), output captured.
pub fn spawn(binary: &str, vars: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start binary")
}

/// Kills the child if the test fails before it is stopped, so no service
/// outlives its test.
pub struct KillOnDrop(pub Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits up to `secs` seconds until the service at `base` answers `/ready`
/// with 200.
pub async fn wait_ready(http: &reqwest::Client, base: &str, secs: u64) {
    let url = format!("{base}/ready");
    crate::eventually(secs, &format!("{base} ready"), || async {
        http.get(&url)
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await;
}

/// Sends SIGTERM to `child`.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// Starts `binary` configured only by environment variables for `env`, waits
/// for `/ready` 200, sends SIGTERM and checks it exits 0 within 20 s. Returns
/// what it logged (JSON lines) for further checks.
pub async fn check_runs_from_environment(binary: &str, env: &crate::TestEnv) -> String {
    use std::io::Read;
    use std::time::Duration;
    let port = free_port();
    let mut guard = KillOnDrop(Some(spawn(
        binary,
        &[
            ("PORT", port.to_string()),
            ("DATABASE_URL", env.db.url.clone()),
            ("RABBITMQ_URL", crate::rabbitmq_url()),
            ("HUB_ADMIN_TOKEN", crate::service::ADMIN_TOKEN.to_owned()),
            ("INTEGRATION_ENCRYPTION_KEY", env.encryption_key.clone()),
            ("HUB_BUS_PREFIX", env.prefix.clone()),
            ("LOG_FORMAT", "json".to_owned()),
        ],
    )));
    wait_ready(&env.http, &format!("http://127.0.0.1:{port}"), 30).await;
    terminate(guard.0.as_ref().expect("child"));
    let (status, out) = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let child = guard.0.as_mut().expect("child");
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                let mut out = String::new();
                child
                    .stdout
                    .take()
                    .expect("stdout")
                    .read_to_string(&mut out)
                    .expect("read");
                return (s, out);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("join");
    assert!(status.success(), "graceful exit: {status:?}\n{out}");
    let first = out.lines().next().expect("some log output");
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "LOG_FORMAT=json: {first}"
    );
    assert!(
        !out.contains(crate::service::ADMIN_TOKEN),
        "the admin token is never logged"
    );
    assert!(
        !out.contains(&env.encryption_key),
        "the encryption key is never logged"
    );
    out
}

/// Checks that `binary` refuses invalid configuration with exit code 2 and a
/// message naming the key.
pub fn check_rejects_invalid_configuration(binary: &str) {
    let key = (
        "INTEGRATION_ENCRYPTION_KEY",
        "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".to_owned(),
    );
    for (vars, expect) in [
        (vec![key.clone(), ("PORT", "not-a-port".to_owned())], "PORT"),
        (
            vec![key.clone(), ("WEBHOOK_WORKERS", "-3".to_owned())],
            "WEBHOOK_WORKERS",
        ),
        (
            vec![key.clone(), ("RABBITMQ_URL", "http://nope".to_owned())],
            "RABBITMQ_URL",
        ),
        (vec![], "INTEGRATION_ENCRYPTION_KEY"),
    ] {
        let out = spawn(binary, &vars).wait_with_output().expect("run binary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expect), "{expect} named in: {stderr}");
    }
}

/// Defines the two tests every service binary passes as an operator runs it,
/// for the binary at `$binary` (`env!("CARGO_BIN_EXE_<name>")`): it starts
/// from environment variables alone, says it is listening and stops on
/// SIGTERM ([`check_runs_from_environment`]); invalid configuration stops it
/// naming the key ([`check_rejects_invalid_configuration`]).
#[macro_export]
macro_rules! binary_tests {
    ($binary:expr) => {
        #[tokio::test]
        async fn starts_from_environment_variables_alone_and_stops_on_sigterm() {
            let env = $crate::TestEnv::new().await;
            let logs = $crate::binary::check_runs_from_environment($binary, &env).await;
            assert!(logs.contains("\"listening\"") || logs.contains("listening"));
        }

        #[test]
        fn invalid_configuration_stops_the_binary_naming_the_key() {
            $crate::binary::check_rejects_invalid_configuration($binary);
        }
    };
}
