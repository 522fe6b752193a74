//! Builds the web chat page (`web/` at the repository root) with npm and embeds the result:
//! generates `$OUT_DIR/web_assets.rs`, a table of every built file (path, bytes, content type,
//! cache policy, ETag) that `src/web.rs` serves, with gzip, Brotli and zstd copies of every
//! compressible file made here, once, at their highest levels (the server picks one per request's
//! `Accept-Encoding` and never compresses a page at run time).
//!
//! npm runs only when the page's sources change (`npm ci` only when the lock file does).
//! `CONFAB_SKIP_WEB=1` skips it and embeds a one-page notice instead (for machines without
//! Node.js).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("..").join("..").join("web");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let dist = out_dir.join("web");
    println!("cargo:rerun-if-env-changed=CONFAB_SKIP_WEB");
    for p in ["src", "package.json", "package-lock.json", "build.mjs"] {
        println!("cargo:rerun-if-changed={}", web.join(p).display());
    }
    let skip = matches!(
        env::var("CONFAB_SKIP_WEB").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    );
    if skip || !web.join("package.json").exists() {
        placeholder(&dist);
    } else {
        build(&web, &dist);
    }
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    let packed = out_dir.join("web-encoded");
    let _ = fs::remove_dir_all(&packed);
    fs::create_dir_all(&packed).unwrap();
    for (n, (rel, abs)) in files.into_iter().enumerate() {
        let bytes = fs::read(&abs).unwrap();
        let immutable = rel.starts_with("/assets/");
        let ct = content_type(&rel);
        let mut encoded = String::new();
        if compressible(ct) {
            for (name, data) in [
                ("br", brotli_bytes(&bytes)),
                ("zstd", zstd::encode_all(&bytes[..], 19).unwrap()),
                ("gzip", gzip_bytes(&bytes)),
            ] {
                // A copy that saves nothing is not worth a header.
                if data.len() < bytes.len() {
                    let file = packed.join(format!("{n}.{name}"));
                    fs::write(&file, &data).unwrap();
                    encoded.push_str(&format!(
                        "(\"{name}\", include_bytes!({:?})), ",
                        file.display().to_string()
                    ));
                }
            }
        }
        table.push_str(&format!(
            "    Asset {{ path: {rel:?}, body: include_bytes!({abs:?}), content_type: {ct:?}, immutable: {immutable}, etag: \"\\\"{etag:016x}\\\"\", encoded: &[{encoded}] }},\n",
            abs = abs.display().to_string(),
            etag = fnv1a(&bytes),
        ));
    }
    table.push_str("];\n");
    fs::write(out_dir.join("web_assets.rs"), table).unwrap();
}

fn build(web: &Path, dist: &Path) {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let npm_ok = Command::new(npm)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !npm_ok {
        panic!(
            "\n\nconfab's web chat page (web/) is built with npm, and npm was not found.\n\
             Install Node.js 18+ with npm (Debian/Ubuntu: apt-get install nodejs npm; \
             or https://nodejs.org), then build again.\n\
             To build without the web page, set CONFAB_SKIP_WEB=1 (the server then shows \
             a notice at /).\n\n"
        );
    }
    let stamp = web.join("node_modules").join(".package-lock.json");
    let lock = web.join("package-lock.json");
    let stale = match (fs::metadata(&stamp), fs::metadata(&lock)) {
        (Ok(s), Ok(l)) => l.modified().unwrap() > s.modified().unwrap(),
        _ => true,
    };
    if stale {
        run(
            Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(web),
            "npm ci (in web/)",
        );
    }
    run(
        Command::new(npm)
            .args(["run", "--silent", "build"])
            .env("CONFAB_WEB_OUT", dist)
            .current_dir(web),
        "npm run build (in web/)",
    );
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    if !out.status.success() {
        panic!(
            "\n\n{what} failed ({}):\n{}\n{}\nSet CONFAB_SKIP_WEB=1 to build without the web page.\n",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn placeholder(dist: &Path) {
    let _ = fs::remove_dir_all(dist);
    fs::create_dir_all(dist).unwrap();
    fs::write(
        dist.join("index.html"),
        "<!doctype html><meta charset=utf-8><title>confab</title>\
         <body style=\"font:16px system-ui;max-width:40em;margin:3em auto\">\
         <h1>confab is running</h1><p>The web chat page was not built into this binary \
         (it was built with <code>CONFAB_SKIP_WEB=1</code>). Build again with Node.js and npm \
         installed to get it. The API is at <code>/api</code>, Socket.IO at \
         <code>/socket.io/</code>.</p>",
    )
    .unwrap();
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.push((format!("/{rel}"), path));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Text formats gain from compression; images and fonts are compressed already.
fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type == "image/svg+xml"
}

fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn brotli_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).unwrap();
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}
