//! Switchboard's build step, so the README's commands need no cargo-leptos:
//!
//! 1. `cargo build -p frontend --target wasm32-unknown-unknown` (the hydrate cdylib),
//! 2. wasm-bindgen, run as a library (`--target web`), into `target/site/pkg/`,
//! 3. `style/main.css` → `target/site/pkg/switchboard.css`, `public/*` → `target/site/`,
//! 4. `cargo build -p server` (the `switchboard` binary).
//!
//! Usage: `cargo run -p xtask -- build [--release]`,
//!        `cargo run -p xtask -- run [--release] [-- <server args>]`.
//! Each cargo step is incremental, so a second run with nothing changed takes seconds.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The name leptos' hydration script loads: `/pkg/switchboard.js` and `switchboard_bg.wasm`.
const OUTPUT_NAME: &str = "switchboard";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ours, server_args) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&args[..], &[][..]),
    };
    let release = ours.iter().any(|a| a == "--release");
    match ours.first().map(String::as_str) {
        Some("build") => {
            build(release)?;
        }
        Some("run") => {
            let binary = build(release)?;
            let status = Command::new(&binary)
                .args(server_args)
                .current_dir(workspace())
                .status()
                .with_context(|| format!("starting {}", binary.display()))?;
            if !status.success() {
                bail!("the server exited with {status}");
            }
        }
        _ => bail!("usage: xtask build [--release] | xtask run [--release] [-- <server args>]"),
    }
    Ok(())
}

/// The workspace to build: the nearest directory from here up with a `[workspace]` manifest.
/// Not the directory xtask was compiled in: a binary shared through a target directory may
/// come from another clone.
fn workspace() -> PathBuf {
    let start = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|m| m.contains("[workspace]"))
        })
        .map(Path::to_path_buf)
        .unwrap_or(start)
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace().join("target"),
    }
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .current_dir(workspace())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

/// Builds everything; returns the server binary's path.
fn build(release: bool) -> Result<PathBuf> {
    let root = workspace();
    let site = root.join("target").join("site");
    let pkg = site.join("pkg");
    std::fs::create_dir_all(&pkg)?;

    // The wasm: its own profile for release (size over speed, LTO).
    let wasm_profile = if release { "wasm-release" } else { "dev" };
    cargo(&[
        "build",
        "-p",
        "frontend",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        wasm_profile,
    ])?;
    let wasm_dir = if release { "wasm-release" } else { "debug" };
    let wasm = target_dir()
        .join("wasm32-unknown-unknown")
        .join(wasm_dir)
        .join("frontend.wasm");
    eprintln!(
        "xtask: wasm-bindgen {} -> {}",
        wasm.display(),
        pkg.display()
    );
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(&wasm)
        .out_name(OUTPUT_NAME)
        .web(true)?
        .typescript(false)
        .debug(!release)
        .keep_debug(false)
        // Function names are most of an unstripped wasm (2.5 of 4 MB here); release drops them.
        .remove_name_section(release)
        .remove_producers_section(release);
    bindgen.generate(&pkg).context("wasm-bindgen")?;

    std::fs::copy(
        root.join("style/main.css"),
        pkg.join(format!("{OUTPUT_NAME}.css")),
    )
    .context("copying style/main.css")?;
    copy_dir(&root.join("public"), &site)?;

    let server_profile = if release { "release" } else { "dev" };
    cargo(&[
        "build",
        "-p",
        "server",
        "--bin",
        "switchboard",
        "--profile",
        server_profile,
    ])?;
    let bin_dir = if release { "release" } else { "debug" };
    let binary = target_dir().join(bin_dir).join("switchboard");
    eprintln!(
        "xtask: site in {}, server at {}",
        site.display(),
        binary.display()
    );
    Ok(binary)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    if !from.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
