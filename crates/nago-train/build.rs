//! Records libtorch's library directory as an rpath so the binaries run without
//! `LD_LIBRARY_PATH`, and keeps `libtorch_cuda` linked where it can be loaded (with the
//! default `--as-needed`, the linker drops it and CUDA is never found at run time).

use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(l) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(l).join("lib"));
    }
    let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
        "python"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.util,os;s=importlib.util.find_spec('torch');print(os.path.join(os.path.dirname(s.origin),'lib'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()))
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-env-changed=NAGO_TORCH_CUDA");
    let Some(lib) = torch_lib_dir() else {
        println!("cargo:warning=nago-train: torch's library directory not found; set LIBTORCH or use the Makefile's environment");
        println!("cargo:rustc-env=NAGO_TORCH_VERSION=unknown");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let version = lib
        .parent()
        .map(|t| t.join("version.py"))
        .and_then(|v| std::fs::read_to_string(v).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=NAGO_TORCH_VERSION={version}");
    // libtorch_cuda is kept when its CUDA dependencies are installed beside it (a full torch
    // wheel) or when NAGO_TORCH_CUDA=1 asks for it (a binary built here to run on a GPU machine
    // whose own torch carries the CUDA libraries). The lean CPU environment has
    // libtorch_cuda.so but not cuDNN/cuBLAS, so there it is not linked.
    let cuda = lib.join("libtorch_cuda.so");
    let site = lib.parent().and_then(|t| t.parent()).map(PathBuf::from);
    let deps_present = site
        .map(|s| {
            s.join("nvidia").join("cudnn").exists()
                || s.join("nvidia")
                    .join("cu13")
                    .join("lib")
                    .join("libcudnn.so.9")
                    .exists()
        })
        .unwrap_or(false);
    let forced = std::env::var("NAGO_TORCH_CUDA").ok();
    let want = match forced.as_deref() {
        Some("1") => true,
        Some("0") => false,
        _ => deps_present,
    };
    if want && cuda.exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
