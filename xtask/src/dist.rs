//! `cargo xtask dist`: the `nap` binary packaged for this machine, into
//! `target/dist/`:
//!
//! - `nap_cli-VERSION-py3-none-PLATFORM.whl`, a PyPI wheel built by
//!   maturin's `bin` bindings (`crates/nap-cli/pyproject.toml` holds its
//!   metadata): `pip install` puts `nap` on the environment's PATH;
//! - `nap-cli-VERSION.tgz`, the npm launcher package whose `bin` runs the
//!   binary of the platform package for the machine it runs on
//!   (`xtask/dist/npm/nap.js`; the esbuild/biome layout), and
//!   `nap-cli-OS-CPU[-LIBC]-VERSION.tgz`, that platform package for this
//!   machine, holding the same binary as the wheel (taken out of it). No
//!   install script: nothing is downloaded at install time;
//! - `SHA256SUMS`, in the format of `sha256sum`.
//!
//! Reproducible: the timestamps in both formats come from
//! `SOURCE_DATE_EPOCH` (the last commit's time unless set), the build's
//! paths are remapped (`--remap-path-prefix`), npm packs with fixed times
//! and modes; the same sources built twice give the same bytes.
//!
//! maturin is pinned and installed with pip into `<tools>/dist-venv`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cmd;

/// The maturin release that builds the wheel.
const MATURIN: &str = "maturin==1.16.0";

/// The venv, inside the tools dir, holding maturin.
const DIST_VENV: &str = "dist-venv";

/// The name of the npm launcher package (and of the PyPI distribution).
const PACKAGE: &str = "nap-cli";

/// What `cargo xtask dist` produced.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// `target/dist`.
    pub dir: PathBuf,
    /// The wheel.
    pub wheel: PathBuf,
    /// The npm launcher package.
    pub npm_launcher: PathBuf,
    /// The npm platform package for this machine.
    pub npm_platform: PathBuf,
    /// `SHA256SUMS`.
    pub sums: PathBuf,
    /// The host's target triple.
    pub triple: String,
}

/// The crate metadata the packages carry.
struct Meta {
    version: String,
    description: String,
    license: String,
    repository: String,
    homepage: String,
    keywords: Vec<String>,
}

/// Builds everything into `target/dist/` (emptied first).
pub fn run() -> Result<Artifacts> {
    let root = cmd::workspace_root();
    let meta = metadata()?;
    let triple = host_triple()?;
    let epoch = source_date_epoch();
    let target = root.join("target");
    let dir = target.join("dist");
    let stage = target.join("dist-stage");
    for d in [&dir, &stage] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("cannot empty {}", d.display()))?;
        }
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    println!(
        "dist: nap-cli {} for {triple} (SOURCE_DATE_EPOCH={epoch})",
        meta.version
    );

    let python = ensure_maturin(&nap_testkit::tools_dir())?;
    let wheel = build_wheel(&python, &stage, &dir, epoch)?;

    let platform = npm_platform(&triple)?;
    let binary_name = format!("nap{}", std::env::consts::EXE_SUFFIX);
    let platform_dir = stage.join("npm").join(&platform.name);
    let bin_dir = platform_dir.join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    extract_binary(&python, &wheel, &meta.version, &bin_dir.join(&binary_name))?;
    write_platform_package(&platform_dir, &platform, &meta, &triple)?;
    let launcher_dir = stage.join("npm").join(PACKAGE);
    write_launcher_package(&launcher_dir, &platform, &meta)?;
    let npm_platform = npm_pack(&platform_dir, &dir, epoch)?;
    let npm_launcher = npm_pack(&launcher_dir, &dir, epoch)?;

    let sums = dir.join("SHA256SUMS");
    write_sums(&sums, &[&wheel, &npm_launcher, &npm_platform])?;
    for f in [&wheel, &npm_launcher, &npm_platform, &sums] {
        println!("    {}", f.display());
    }
    Ok(Artifacts {
        dir,
        wheel,
        npm_launcher,
        npm_platform,
        sums,
        triple,
    })
}

fn metadata() -> Result<Meta> {
    let out = cmd::cargo()
        .current_dir(cmd::workspace_root())
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("could not run `cargo metadata`")?;
    if !out.status.success() {
        bail!("`cargo metadata` failed ({})", out.status);
    }
    let all: Value =
        serde_json::from_slice(&out.stdout).context("`cargo metadata` printed no JSON")?;
    let package = all["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == PACKAGE))
        .context("no nap-cli package in the workspace")?;
    let text = |key: &str| package[key].as_str().unwrap_or_default().to_owned();
    Ok(Meta {
        version: text("version"),
        description: text("description"),
        license: text("license"),
        repository: text("repository"),
        homepage: text("homepage"),
        keywords: package["keywords"]
            .as_array()
            .map(|k| {
                k.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = cmd::output(Command::new(rustc).arg("-vV")).context("could not run `rustc -vV`")?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` names no host")
}

/// `SOURCE_DATE_EPOCH` when set, else the last commit's time, else 1980
/// (the earliest time a zip file can hold).
fn source_date_epoch() -> u64 {
    const ZIP_EPOCH: u64 = 315_532_800;
    let from_env = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok());
    let from_git = || {
        cmd::output(
            Command::new("git")
                .current_dir(cmd::workspace_root())
                .args(["log", "-1", "--format=%ct"]),
        )
        .and_then(|v| v.trim().parse().ok())
    };
    from_env
        .or_else(from_git)
        .unwrap_or(ZIP_EPOCH)
        .max(ZIP_EPOCH)
}

/// maturin in `<tools>/dist-venv`, installed with pip when it is not the
/// pinned release; returns the venv's python.
fn ensure_maturin(tools_dir: &Path) -> Result<PathBuf> {
    let venv = tools_dir.join(DIST_VENV);
    let python = venv.join("bin").join("python");
    let maturin = venv.join("bin").join("maturin");
    let wanted = MATURIN.trim_start_matches("maturin==");
    let have = cmd::output(Command::new(&maturin).arg("--version"));
    if have.as_deref() == Some(&format!("maturin {wanted}")) {
        return Ok(python);
    }
    println!("dist: installing {MATURIN} into {}", venv.display());
    if !cmd::succeeds(Command::new(&python).arg("--version")) {
        cmd::run(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
        )
        .context("could not create the maturin venv (python3 with venv needed)")?;
    }
    cmd::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg(MATURIN),
    )?;
    Ok(python)
}

/// `--remap-path-prefix` flags that take the checkout's and cargo's paths
/// out of the binary.
fn remap_flags() -> String {
    let mut flags = vec![format!(
        "--remap-path-prefix={}=/nap",
        cmd::workspace_root().display()
    )];
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    flags.join(" ")
}

fn build_wheel(python: &Path, stage: &Path, dir: &Path, epoch: u64) -> Result<PathBuf> {
    let out = stage.join("wheel");
    let root = cmd::workspace_root();
    cmd::run(
        Command::new(python)
            .args(["-m", "maturin", "build", "--release", "--locked", "-m"])
            .arg(root.join("crates/nap-cli/Cargo.toml"))
            .arg("--out")
            .arg(&out)
            .current_dir(root)
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("RUSTFLAGS", remap_flags()),
    )
    .context("maturin could not build the wheel")?;
    let built: Vec<PathBuf> = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    let [wheel] = built.as_slice() else {
        bail!("maturin built {} wheels, expected one", built.len());
    };
    let name = wheel.file_name().context("a wheel without a name")?;
    let dest = dir.join(name);
    std::fs::copy(wheel, &dest)?;
    Ok(dest)
}

/// Takes the binary out of the wheel, so the npm package carries the very
/// same bytes.
fn extract_binary(python: &Path, wheel: &Path, version: &str, dest: &Path) -> Result<()> {
    let member = format!(
        "nap_cli-{version}.data/scripts/nap{}",
        std::env::consts::EXE_SUFFIX
    );
    let script = "import shutil, sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    \
                  shutil.copyfileobj(src, dst)\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(wheel)
        .arg(&member)
        .arg(dest)
        .output()
        .context("could not run python")?;
    if !out.status.success() {
        bail!(
            "could not take {member} out of {}: {}",
            wheel.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// An npm platform package: its name and npm's `os`, `cpu`, `libc`.
#[derive(Debug, Clone)]
struct Platform {
    name: String,
    os: &'static str,
    cpu: &'static str,
    libc: Option<&'static str>,
}

/// The platform package for a Rust target triple (the names the launcher,
/// `xtask/dist/npm/nap.js`, looks for).
fn npm_platform(triple: &str) -> Result<Platform> {
    let cpu = match triple.split('-').next() {
        Some("x86_64") => "x64",
        Some("aarch64") => "arm64",
        _ => bail!("no npm cpu name for {triple}"),
    };
    let (os, libc) = if triple.contains("-linux-gnu") {
        ("linux", Some("glibc"))
    } else if triple.contains("-linux-musl") {
        ("linux", Some("musl"))
    } else if triple.contains("-apple-darwin") {
        ("darwin", None)
    } else {
        bail!("no npm platform package for {triple}");
    };
    let suffix = match libc {
        Some("glibc") => "-gnu",
        Some(_) => "-musl",
        None => "",
    };
    Ok(Platform {
        name: format!("{PACKAGE}-{os}-{cpu}{suffix}"),
        os,
        cpu,
        libc,
    })
}

fn common_fields(meta: &Meta) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("version".into(), json!(meta.version));
    m.insert("license".into(), json!(meta.license));
    m.insert("homepage".into(), json!(meta.homepage));
    m.insert(
        "repository".into(),
        json!({"type": "git", "url": format!("git+{}.git", meta.repository)}),
    );
    m.insert(
        "bugs".into(),
        json!({"url": format!("{}/issues", meta.repository)}),
    );
    m
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn copy_docs(dir: &Path, readme: &str) -> Result<()> {
    let root = cmd::workspace_root();
    std::fs::write(dir.join("README.md"), readme)?;
    std::fs::copy(root.join("LICENSE"), dir.join("LICENSE"))?;
    Ok(())
}

fn write_platform_package(dir: &Path, p: &Platform, meta: &Meta, triple: &str) -> Result<()> {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(p.name));
    m.insert(
        "description".into(),
        json!(format!(
            "The nap binary for {triple} (installed by the nap-cli package)"
        )),
    );
    m.extend(common_fields(meta));
    m.insert("os".into(), json!([p.os]));
    m.insert("cpu".into(), json!([p.cpu]));
    if let Some(libc) = p.libc {
        m.insert("libc".into(), json!([libc]));
    }
    m.insert("files".into(), json!(["bin/", "README.md", "LICENSE"]));
    m.insert("preferUnplugged".into(), json!(true));
    write_json(&dir.join("package.json"), &Value::Object(m))?;
    copy_docs(
        dir,
        &format!(
            "# {}\n\nThe `nap` binary built for `{triple}`. Install [`nap-cli`](https://www.npmjs.com/package/nap-cli), \
             which depends on it for this platform and puts `nap` on the PATH.\n",
            p.name
        ),
    )
}

fn write_launcher_package(dir: &Path, p: &Platform, meta: &Meta) -> Result<()> {
    let root = cmd::workspace_root();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(root.join("xtask/dist/npm/nap.js"), bin.join("nap.js"))?;
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(PACKAGE));
    m.insert("description".into(), json!(meta.description));
    m.extend(common_fields(meta));
    m.insert("keywords".into(), json!(meta.keywords));
    m.insert("bin".into(), json!({"nap": "bin/nap.js"}));
    let optional: BTreeMap<&str, &str> = [(p.name.as_str(), meta.version.as_str())].into();
    m.insert("optionalDependencies".into(), json!(optional));
    m.insert("engines".into(), json!({"node": ">=16"}));
    m.insert("files".into(), json!(["bin/", "README.md", "LICENSE"]));
    write_json(&dir.join("package.json"), &Value::Object(m))?;
    let readme = std::fs::read_to_string(root.join("crates/nap-cli/README.md"))?;
    copy_docs(dir, &readme)
}

/// `npm pack` of `dir` into `dest`; returns the tarball.
fn npm_pack(dir: &Path, dest: &Path, epoch: u64) -> Result<PathBuf> {
    let out = Command::new("npm")
        .args(["pack", "--json", "--pack-destination"])
        .arg(dest)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .output()
        .context("could not run `npm pack` (is npm installed?)")?;
    if !out.status.success() {
        bail!(
            "`npm pack` in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let packed: Value =
        serde_json::from_slice(&out.stdout).context("`npm pack --json` printed no JSON")?;
    let name = packed[0]["filename"]
        .as_str()
        .context("`npm pack --json` names no file")?;
    Ok(dest.join(name))
}

/// Hex SHA-256 of a file.
pub fn sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn write_sums(path: &Path, files: &[&PathBuf]) -> Result<()> {
    let mut lines = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .context("a dist file without a name")?;
        lines.push(format!("{}  {name}\n", sha256(f)?));
    }
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    std::fs::write(path, lines.concat()).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_packages_are_named_as_the_launcher_expects() {
        let p = npm_platform("x86_64-unknown-linux-gnu").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (p.name.as_str(), p.os, p.cpu, p.libc),
            ("nap-cli-linux-x64-gnu", "linux", "x64", Some("glibc"))
        );
        let p = npm_platform("aarch64-apple-darwin").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.name, "nap-cli-darwin-arm64");
        let launcher = include_str!("../dist/npm/nap.js");
        for triple in [
            "x86_64-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu",
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "x86_64-apple-darwin",
            "aarch64-apple-darwin",
        ] {
            let name = npm_platform(triple).unwrap_or_else(|e| panic!("{e}")).name;
            assert!(launcher.contains(&format!("\"{name}\"")), "{name}");
        }
        assert!(npm_platform("riscv64gc-unknown-linux-gnu").is_err());
    }
}
