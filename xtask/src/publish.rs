//! Checks that keep the crates publishable: the MSRV the workspace claims
//! is at least what every dependency needs.
//!
//! The claim is checked against the dependencies' own `rust-version`
//! (from `cargo metadata`), and clippy's `incompatible_msrv` lint (on in
//! the clippy step) flags any standard-library item newer than the claim.
//! Compiling with the MSRV toolchain itself would be the stronger check;
//! it needs that toolchain installed (`rustup toolchain install 1.89`),
//! which this step does not do.

use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd;

/// A Rust version as `major.minor.patch`, a missing part being zero.
fn version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// Fails when a workspace crate claims an MSRV below what a dependency
/// declares; prints the claim and the dependency that sets the floor.
pub fn check_msrv() -> Result<()> {
    let output = cmd::cargo()
        .current_dir(cmd::workspace_root())
        .args(["metadata", "--format-version", "1", "--locked"])
        .stderr(Stdio::inherit())
        .output()
        .context("could not run `cargo metadata`")?;
    if !output.status.success() {
        bail!("`cargo metadata` failed ({})", output.status);
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("`cargo metadata` printed no JSON")?;
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let declared = |p: &Value| p["rust_version"].as_str().and_then(version);
    let mut floor: Option<((u64, u64, u64), String)> = None;
    let mut claims = Vec::new();
    for package in &packages {
        let id = package["id"].as_str().unwrap_or_default();
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let Some(v) = declared(package) else { continue };
        if members.contains(&id) {
            claims.push((v, name));
        } else if floor.as_ref().is_none_or(|(f, _)| v > *f) {
            floor = Some((v, name));
        }
    }
    let Some(((a, b, c), setter)) = floor else {
        println!("no dependency declares a rust-version");
        return Ok(());
    };
    let low: Vec<String> = claims
        .iter()
        .filter(|(v, _)| *v < (a, b, c))
        .map(|((x, y, z), name)| format!("{name} ({x}.{y}.{z})"))
        .collect();
    if !low.is_empty() {
        bail!(
            "rust-version too low: {} claim less than {a}.{b}.{c}, which {setter} needs",
            low.join(", ")
        );
    }
    println!("rust-version: every workspace crate claims at least {a}.{b}.{c} (set by {setter})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_with_missing_parts_as_zero() {
        assert_eq!(version("1.89"), Some((1, 89, 0)));
        assert_eq!(version("1.89.2"), Some((1, 89, 2)));
        assert_eq!(version("x"), None);
    }
}
