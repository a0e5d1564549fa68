//! The private Postgres cluster and RabbitMQ node a chaos run restarts.
//!
//! The machine's own servers are shared with everything else that runs on
//! it (other test suites among them), so a chaos run never touches them: it
//! makes a Postgres cluster (`initdb`, `pg_ctl`, the Debian binaries) and a
//! RabbitMQ node (`rabbitmq-server` with its own node name, ports, data and
//! log directories, config and Erlang cookie) of its own under
//! `target/chaos/<run>/`, on free ports, and removes them afterwards.

use crate::infra;
use crate::ui;
use anyhow::{Context, Result, bail, ensure};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs `cmd`, failing with its output when it fails.
fn run_quiet(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run {}", ui::show(cmd)))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A Postgres cluster of the run's own.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    /// Run the server's tools as the `postgres` user (initdb refuses root).
    as_postgres: bool,
}

impl Postgres {
    /// `initdb` a cluster in `dir/data` (trust auth, user `postgres`) and starts it.
    pub fn create(dir: &Path) -> Result<Self> {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .context("no /usr/lib/postgresql: install the postgresql package")?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("bin/initdb").is_file())
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .context("no initdb under /usr/lib/postgresql/<version>/bin")?;
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        std::fs::create_dir_all(dir)?;
        let as_postgres = infra::is_root();
        if as_postgres {
            run_quiet(
                Command::new("chown").arg("postgres:postgres").arg(dir),
                "chown of the cluster directory",
            )?;
        }
        let pg = Self {
            bin,
            dir: dir.to_path_buf(),
            port: free_port()?,
            as_postgres,
        };
        let data = pg.data();
        run_quiet(
            pg.tool("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        )?;
        pg.start()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command running one of the server's programs, as `postgres` when root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=300 \
             -c shared_buffers=64MB -c autovacuum_naptime=5s",
            self.port,
            self.dir.display()
        );
        run_quiet(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.join("postgres.log"))
                .args(["-w", "-t", "90", "-o", &options, "start"]),
            "pg_ctl start",
        )
    }

    /// Stops the server: `immediate` is a crash (recovery on the next start),
    /// else a fast shutdown.
    pub fn stop(&self, immediate: bool) -> Result<()> {
        let mode = if immediate { "immediate" } else { "fast" };
        run_quiet(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-m", mode, "stop"]),
            "pg_ctl stop",
        )
    }

    /// Whether `pg_ctl status` says it runs.
    fn running(&self) -> bool {
        ui::succeeds(self.tool("pg_ctl").arg("-D").arg(self.data()).arg("status"))
    }

    /// Where a tablespace directory for the `postgres` user may go: made
    /// owned by it (when root).
    pub fn give_to_server(&self, path: &Path) -> Result<()> {
        if self.as_postgres {
            run_quiet(
                Command::new("chown").arg("postgres:postgres").arg(path),
                "chown of the tablespace directory",
            )?;
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running()
            && let Err(e) = self.stop(true)
        {
            ui::warn(&format!("could not stop the private Postgres: {e:#}"));
        }
    }
}

/// A RabbitMQ node of the run's own.
pub struct Rabbit {
    dir: PathBuf,
    pub node: String,
    pub port: u16,
    dist_port: u16,
    server: PathBuf,
    ctl: PathBuf,
    child: Option<Child>,
}

impl Rabbit {
    /// Writes the node's config and starts it.
    pub fn create(dir: &Path, run_id: &str) -> Result<Self> {
        // The scripts themselves: /usr/sbin/rabbitmq-server is a wrapper that
        // switches to the rabbitmq user and its settings when run as root.
        let program = |name: &str| {
            let direct = PathBuf::from("/usr/lib/rabbitmq/bin").join(name);
            if direct.is_file() {
                Some(direct)
            } else {
                infra::find_program(name)
            }
        };
        let server = program("rabbitmq-server")
            .context("rabbitmq-server is not installed (apt-get install rabbitmq-server)")?;
        let ctl = program("rabbitmqctl").context("rabbitmqctl is not installed")?;
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let port = free_port()?;
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"),
        )?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        let mut rabbit = Self {
            dir: dir.to_path_buf(),
            node: format!("chaos{run_id}@localhost"),
            port,
            dist_port: free_port()?,
            server,
            ctl,
            child: None,
        };
        rabbit.start()?;
        Ok(rabbit)
    }

    /// The AMQP URL of the node.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The variables that make the scripts use this node and nothing of the
    /// machine's broker (its rabbitmq-env.conf names another node).
    fn env(&self, cmd: &mut Command) {
        let d = &self.dir;
        cmd.current_dir(d)
            // The Erlang cookie lives in $HOME: the server makes it, the CLI reads it.
            .env("HOME", d.join("home"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONF_ENV_FILE", "/dev/null")
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
    }

    /// Starts the node and waits until it has booted.
    pub fn start(&mut self) -> Result<()> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        let mut cmd = Command::new(&self.server);
        self.env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Its own group: the cleanup ends the node and its helpers together.
            .process_group(0);
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("could not start {}", self.server.display()))?,
        );
        let started = Instant::now();
        loop {
            // Fails at once while the node has not registered yet.
            let mut wait = Command::new(&self.ctl);
            self.env(&mut wait);
            wait.args(["-n", &self.node, "-q", "await_startup", "--timeout", "60"]);
            if ui::succeeds(&mut wait) {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "rabbitmq-server exited ({status}); see {}",
                    self.dir.join("server.log").display()
                );
            }
            ensure!(
                started.elapsed() < START_TIMEOUT,
                "RabbitMQ node {} did not boot within {}s; see {}",
                self.node,
                START_TIMEOUT.as_secs(),
                self.dir.join("log").display()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Stops the node (`rabbitmqctl stop`, which returns once it is down).
    pub fn stop(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.ctl);
        self.env(&mut cmd);
        cmd.args(["-n", &self.node, "-q", "stop"]);
        run_quiet(&mut cmd, "rabbitmqctl stop")?;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        Ok(())
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// A size-limited filesystem (tmpfs) mounted for a tablespace: the "disk"
/// of the log table. Needs root.
pub struct SmallDisk {
    pub path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes` at `path`.
    pub fn mount(path: &Path, megabytes: u32) -> Result<Self> {
        std::fs::create_dir_all(path)?;
        run_quiet(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=700")])
                .arg("tmpfs")
                .arg(path),
            "mount -t tmpfs",
        )?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
