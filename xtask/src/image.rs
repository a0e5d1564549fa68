//! `cargo xtask image`: builds the final stage of `deploy/Dockerfile`
//! without a Docker engine, as an OCI image, and says its size.
//!
//! Where Docker runs, `docker build -f deploy/Dockerfile .` is the way; this
//! command is for machines without an engine or without Docker Hub (such as
//! this project's CI machines), so that the image's size is measured rather
//! than guessed. It makes the same two things the Dockerfile's final stage
//! is made of:
//!
//! 1. **the base**: Debian bookworm as `debian:bookworm-slim` is made,
//!    by `debootstrap --variant=minbase` from Debian's own packages, with
//!    the paths the official slim images exclude removed (documentation but
//!    its copyright files, man and info pages, locales, apt's lists and
//!    caches, logs); then, as the Dockerfile's `RUN` lines do,
//!    `ca-certificates` and the `hub` user (uid and gid 10001). Kept under
//!    `target/image/base/` and reused by later runs;
//! 2. **the binaries**: the three services built `--release --locked` and
//!    stripped with `strip --strip-debug`, as the builder stage does, in
//!    `/usr/local/bin`.
//!
//! Each becomes a layer (a reproducible tar: sorted names, owner 0, times
//! 0, gzip'd), with the Dockerfile's user, environment, ports, stop signal
//! and command in the image config, written as an OCI image layout under
//! `target/image/oci/` (reference `dev`; `skopeo copy
//! oci:target/image/oci:dev docker-daemon:integration-hub:dev` loads it
//! where a daemon runs). `skopeo inspect` reads it back, and each binary
//! is run from the assembled root filesystem as user 10001 (`chroot
//! --userspec`): `migrate` against a scratch database of the local
//! Postgres, which proves the binaries start and work on the slim base
//! with what it has. Prints each layer's size on disk and compressed (what
//! a registry stores and a node pulls).

use crate::ui;
use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

const MIRROR: &str = "http://deb.debian.org/debian";
const SUITE: &str = "bookworm";
const TAG: &str = "integration-hub:dev";
const BINARIES: [&str; 3] = [
    "integration-manager",
    "integration-sync",
    "webhook-dispatcher",
];
/// The official slim images' path excludes (their dpkg `path-exclude`s),
/// applied after the fact; `usr/share/doc` keeps its copyright files.
const SLIM_REMOVE: [&str; 9] = [
    "usr/share/man",
    "usr/share/info",
    "usr/share/groff",
    "usr/share/lintian",
    "usr/share/linda",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
];

pub fn run(args: &[&str]) -> Result<ExitCode> {
    ensure!(
        args.is_empty(),
        "`image` takes no arguments (usage: cargo xtask image)"
    );
    ensure!(
        crate::infra::is_root(),
        "`cargo xtask image` needs root: debootstrap and chroot do (run it with sudo)"
    );
    let started = Instant::now();
    crate::infra::ensure_programs(
        &[("debootstrap", "debootstrap"), ("skopeo", "skopeo")],
        "to build the image's base and read the image back",
    )?;
    let dir = crate::target_dir().join("image");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join("base");
    ensure_base(&base)?;
    let app = dir.join("app");
    build_binaries(&app)?;

    ui::step("layers and the OCI image layout");
    let oci = dir.join("oci");
    let _ = std::fs::remove_dir_all(&oci);
    std::fs::create_dir_all(oci.join("blobs/sha256"))?;
    let base_layer = layer(&base, &oci, "base")?;
    let app_layer = layer(&app, &oci, "binaries")?;
    write_image(&oci, &[&base_layer, &app_layer])?;
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:{}", oci.display(), tag_name()))
        .output()
        .context("could not run skopeo")?;
    ensure!(
        out.status.success(),
        "skopeo inspect refused the image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("skopeo inspect's answer")?;
    let layers = inspected["Layers"].as_array().map_or(0, Vec::len);
    ensure!(
        layers == 2 && inspected["Architecture"] == "amd64",
        "skopeo reads the image back wrongly: {inspected}"
    );
    ui::info(&format!(
        "skopeo inspect: {layers} layers, {}/{}",
        inspected["Os"].as_str().unwrap_or("?"),
        inspected["Architecture"].as_str().unwrap_or("?")
    ));

    run_in_image(&base, &app)?;

    ui::step("image size");
    let rows = [
        (
            "base (bookworm-slim + ca-certificates + hub user)",
            &base_layer,
        ),
        ("the three binaries", &app_layer),
    ];
    ui::info(&format!(
        "{:<52} {:>12} {:>12}",
        "layer", "on disk", "compressed"
    ));
    for (name, l) in rows {
        ui::info(&format!(
            "{name:<52} {:>12} {:>12}",
            mb(l.tar_size),
            mb(l.gz_size)
        ));
    }
    ui::info(&format!(
        "{:<52} {:>12} {:>12}",
        "image",
        mb(base_layer.tar_size + app_layer.tar_size),
        mb(base_layer.gz_size + app_layer.gz_size)
    ));
    for b in BINARIES {
        let size = std::fs::metadata(app.join("usr/local/bin").join(b))?.len();
        ui::info(&format!("  {b}: {}", mb(size)));
    }
    ui::info(&format!(
        "OCI layout: {} (tag {TAG}); whole run {}",
        oci.display(),
        ui::secs(started.elapsed())
    ));
    Ok(ExitCode::SUCCESS)
}

/// The tag's part after the colon: the layout's reference name.
fn tag_name() -> &'static str {
    TAG.split_once(':').map_or(TAG, |(_, t)| t)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Makes the slim base root filesystem unless a finished one is there.
fn ensure_base(base: &Path) -> Result<()> {
    let done = base.join(".hub-image-base");
    if done.is_file() {
        ui::step(&format!("base: reusing {}", base.display()));
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(base);
    ui::step(&format!(
        "base: debootstrap --variant=minbase {SUITE} with ca-certificates (a few minutes; log in {}.log)",
        base.display()
    ));
    let t = Instant::now();
    let log = std::fs::File::create(base.with_extension("log"))?;
    ui::run_checked(
        Command::new("debootstrap")
            .args(["--variant=minbase", "--include=ca-certificates", SUITE])
            .arg(base)
            .arg(MIRROR)
            .stdout(log.try_clone()?)
            .stderr(log),
        &format!(
            "debootstrap failed; is {MIRROR} reachable? (see {}.log)",
            base.display()
        ),
    )?;
    ui::info(&format!("debootstrap done ({})", ui::secs(t.elapsed())));
    // As the slim images exclude them; documentation keeps its copyright files.
    for path in SLIM_REMOVE {
        let p = base.join(path);
        let was_dir = p.is_dir();
        remove(&p)?;
        if was_dir {
            std::fs::create_dir_all(&p)?;
        }
    }
    for package in std::fs::read_dir(base.join("usr/share/doc"))? {
        let package = package?.path();
        if package.is_dir() {
            for inner in std::fs::read_dir(&package)? {
                let inner = inner?.path();
                if inner.file_name().is_some_and(|n| n != "copyright") {
                    remove(&inner)?;
                }
            }
        }
    }
    for entry in std::fs::read_dir(base.join("var/log"))? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::remove_file(path)?;
        }
    }
    // debootstrap's own leftovers.
    let _ = std::fs::remove_dir_all(base.join("debootstrap"));
    // The Dockerfile's groupadd/useradd, as their lines in the files.
    append(&base.join("etc/group"), "hub:x:10001:\n")?;
    append(
        &base.join("etc/passwd"),
        "hub:x:10001:10001::/nonexistent:/usr/sbin/nologin\n",
    )?;
    append(&base.join("etc/shadow"), "hub:!:20000::::::\n")?;
    std::fs::write(&done, "")?;
    Ok(())
}

/// Removes a file or a directory tree, if there.
fn remove(path: &Path) -> Result<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)?;
    } else if path.exists() {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

fn append(path: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(line.as_bytes())?;
    Ok(())
}

/// The builder stage: release binaries, `strip --strip-debug`, into
/// `app/usr/local/bin`.
fn build_binaries(app: &Path) -> Result<()> {
    ui::step("the three services, --release --locked (as the Dockerfile's builder stage)");
    let mut build = crate::cargo();
    build.args(["build", "--release", "--locked"]);
    for b in BINARIES {
        build.args(["-p", b]);
    }
    ui::run_checked(
        &mut build,
        "the release build failed (see the errors above)",
    )?;
    let bin = app.join("usr/local/bin");
    let _ = std::fs::remove_dir_all(app);
    std::fs::create_dir_all(&bin)?;
    for b in BINARIES {
        let to = bin.join(b);
        std::fs::copy(crate::target_dir().join("release").join(b), &to)?;
        ui::run_checked(
            Command::new("strip").arg("--strip-debug").arg(&to),
            "strip failed (binutils is needed)",
        )?;
    }
    Ok(())
}

/// A layer written into the layout: its digests and sizes.
struct Layer {
    /// sha256 of the gzip'd tar (the blob).
    digest: String,
    /// sha256 of the tar (the config's `diff_ids`).
    diff_id: String,
    tar_size: u64,
    gz_size: u64,
}

/// Tars `root` reproducibly, gzips it into the layout's blobs.
fn layer(root: &Path, oci: &Path, what: &str) -> Result<Layer> {
    let tar = oci.join(format!("{what}.tar"));
    ui::run_checked(
        Command::new("tar")
            .args([
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--xattrs",
                "-C",
            ])
            .arg(root)
            .arg("-cf")
            .arg(&tar)
            .args(["--exclude=./.hub-image-base", "."]),
        "tar failed",
    )?;
    let diff_id = sha256_file(&tar)?;
    let tar_size = std::fs::metadata(&tar)?.len();
    ui::run_checked(
        Command::new("gzip").args(["-n", "-6", "-f"]).arg(&tar),
        "gzip failed",
    )?;
    let gz = tar.with_extension("tar.gz");
    let digest = sha256_file(&gz)?;
    let gz_size = std::fs::metadata(&gz)?.len();
    std::fs::rename(&gz, oci.join("blobs/sha256").join(&digest))?;
    ui::info(&format!(
        "{what}: {} tar, {} gzip'd",
        mb(tar_size),
        mb(gz_size)
    ));
    Ok(Layer {
        digest,
        diff_id,
        tar_size,
        gz_size,
    })
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Writes a blob; its digest and size.
fn blob(oci: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let digest = hex::encode(Sha256::digest(bytes));
    std::fs::write(oci.join("blobs/sha256").join(&digest), bytes)?;
    Ok((digest, bytes.len() as u64))
}

/// The config (the Dockerfile's final-stage settings), the manifest and the
/// index of the layout.
fn write_image(oci: &Path, layers: &[&Layer]) -> Result<()> {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "10001:10001",
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LOG_FORMAT=json",
                "RUST_LOG=info",
            ],
            "WorkingDir": "/tmp",
            "ExposedPorts": {"3026/tcp": {}, "3052/tcp": {}, "3027/tcp": {}},
            "StopSignal": "SIGTERM",
            "Cmd": ["integration-manager"],
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| format!("sha256:{}", l.diff_id)).collect::<Vec<_>>(),
        },
        "history": [
            {"created_by": "debootstrap --variant=minbase --include=ca-certificates bookworm; slim path excludes; hub user 10001"},
            {"created_by": "COPY the three release binaries (strip --strip-debug) /usr/local/bin/"},
        ],
    });
    let (config_digest, config_size) = blob(oci, config.to_string().as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config_size,
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", l.digest),
            "size": l.gz_size,
        })).collect::<Vec<_>>(),
    });
    let (manifest_digest, manifest_size) = blob(oci, manifest.to_string().as_bytes())?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag_name()},
        }],
    });
    std::fs::write(oci.join("index.json"), index.to_string())?;
    std::fs::write(
        oci.join("oci-layout"),
        json!({"imageLayoutVersion": "1.0.0"}).to_string(),
    )?;
    Ok(())
}

/// Runs each binary's `migrate` from the assembled root filesystem as user
/// 10001, against a scratch database of the local Postgres.
fn run_in_image(base: &Path, app: &Path) -> Result<()> {
    ui::step("running the binaries from the image's root filesystem as user 10001 (chroot)");
    let root = crate::target_dir().join("image").join("rootfs");
    let _ = std::fs::remove_dir_all(&root);
    ui::run_checked(
        Command::new("cp").arg("-a").arg(base).arg(&root),
        "copying the base failed",
    )?;
    ui::run_checked(
        Command::new("cp")
            .arg("-a")
            .arg(app.join("usr/local/bin/."))
            .arg(root.join("usr/local/bin")),
        "copying the binaries failed",
    )?;
    let server = crate::infra::database_url();
    let url =
        crate::bench::with_database(&server, &format!("hub_bench_image_{}", std::process::id()))?;
    crate::infra::create_database(&url)?;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let chroot =
        crate::infra::find_program("chroot").context("chroot is not installed (coreutils)")?;
    let outcome = (|| {
        // The first applies the migrations; the others find none pending.
        for b in BINARIES {
            let out = Command::new(&chroot)
                .args(["--userspec=10001:10001"])
                .arg(&root)
                .args([&format!("/usr/local/bin/{b}"), "migrate"])
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("DATABASE_URL", &url)
                .env("RABBITMQ_URL", crate::infra::rabbitmq_url())
                .env("INTEGRATION_ENCRYPTION_KEY", &key)
                .env("LOG_FORMAT", "json")
                .env("RUST_LOG", "warn")
                .output()
                .with_context(|| format!("could not run {b} in the chroot"))?;
            if !out.status.success() {
                bail!(
                    "{b} migrate failed in the image ({}): {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            ui::info(String::from_utf8_lossy(&out.stdout).trim());
        }
        Ok(())
    })();
    let dropped =
        crate::infra::runtime().and_then(|rt| rt.block_on(crate::bench::drop_database(&url)));
    if let Err(e) = dropped {
        ui::warn(&format!("could not drop the scratch database: {e:#}"));
    }
    let _ = std::fs::remove_dir_all(&root);
    outcome
}
