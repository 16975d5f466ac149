#!/usr/bin/env node
// The `nap` command of the npm package `nap-cli`: runs the native binary
// shipped in the platform package for this machine (installed by npm as an
// optional dependency; nothing is downloaded at install time), passing the
// arguments, the standard streams and the exit status through.
"use strict";

const { spawnSync } = require("child_process");

// process.platform-process.arch[-libc] -> the package holding bin/nap.
const PACKAGES = {
  "linux-x64-gnu": "nap-cli-linux-x64-gnu",
  "linux-arm64-gnu": "nap-cli-linux-arm64-gnu",
  "linux-x64-musl": "nap-cli-linux-x64-musl",
  "linux-arm64-musl": "nap-cli-linux-arm64-musl",
  "darwin-x64": "nap-cli-darwin-x64",
  "darwin-arm64": "nap-cli-darwin-arm64",
};

function platformKey() {
  const key = `${process.platform}-${process.arch}`;
  if (process.platform !== "linux") {
    return key;
  }
  const report = process.report && process.report.getReport();
  const glibc = report && report.header && report.header.glibcVersionRuntime;
  return `${key}-${glibc ? "gnu" : "musl"}`;
}

const key = platformKey();
const pkg = PACKAGES[key];
let binary;
try {
  binary = pkg && require.resolve(`${pkg}/bin/nap`);
} catch (_) {
  binary = undefined;
}
if (!binary) {
  process.stderr.write(
    `nap: no binary for ${key}: ` +
      (pkg
        ? `the package ${pkg} is not installed (npm skips optional dependencies with --omit=optional or --no-optional)`
        : "this platform has no nap package; `cargo install nap-cli` builds one") +
      "\n",
  );
  process.exit(1);
}

// The terminal sends Ctrl-C to nap too; nap decides how to end, and its
// status is passed on.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {});
}
const result = spawnSync(binary, process.argv.slice(2), { stdio: "inherit" });
if (result.error) {
  process.stderr.write(`nap: cannot run ${binary}: ${result.error.message}\n`);
  process.exit(1);
}
if (result.signal) {
  process.removeAllListeners(result.signal);
  process.kill(process.pid, result.signal);
}
process.exit(result.status === null ? 1 : result.status);
