//! The folders are layers, and no two files import each other (ARCHITECTURE.md, "The folders"):
//! `core` imports nothing outside itself; `net` imports `core`; `client` and `host` import
//! `core` and `net` (and the two small shells at the top, `clock` and `config`); `tools` may
//! import anything. Read from the source as written: every `crate::` path outside the test
//! modules names the file it reaches. The core is a crate of its own (`kumo-core`, under
//! `src/core`), so its `crate::` paths start at `core`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `.rs` file under `src`, by its path from `src`, with its text.
fn sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    common::rust_files(&root)
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(&root).expect("under src").to_string_lossy().replace('\\', "/");
            (name, std::fs::read_to_string(&path).expect("a source file"))
        })
        .collect()
}

/// The module path a file defines: `core/wire/mod.rs` → `core::wire`.
fn module_of(file: &str) -> String {
    let path = file.trim_end_matches(".rs").trim_end_matches("/mod");
    if path == "lib" || path == "main" { String::new() } else { path.replace('/', "::") }
}

/// The `crate::` paths in `text`, before its test module, with one level of `{a, b}` expanded.
fn crate_paths(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let code: String = code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        let base = rest[..end].trim_end_matches(':');
        if rest[end..].starts_with('{') && rest[..end].ends_with("::") {
            let inner = &rest[end + 1..rest[end..].find('}').map_or(rest.len(), |i| end + i)];
            for item in inner.split(',').map(str::trim).filter(|i| !i.is_empty() && *i != "self") {
                let head = item.split([':', ' ']).next().unwrap_or(item);
                out.push(format!("{base}::{head}"));
            }
        }
        out.push(base.to_owned());
    }
    out
}

/// Which file each file imports from.
fn imports(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeMap<String, String> = sources.keys().map(|f| (module_of(f), f.clone())).collect();
    let mut edges = BTreeMap::new();
    for (file, text) in sources {
        let mut to = BTreeSet::new();
        for path in crate_paths(text) {
            // In the core's crate, `crate::` is `core`.
            let path = if layer(file) == "core" { format!("core::{path}") } else { path };
            let mut parts: Vec<&str> = path.split("::").collect();
            while !parts.is_empty() {
                if let Some(target) = files.get(&parts.join("::")) {
                    if target != file {
                        to.insert(target.clone());
                    }
                    break;
                }
                parts.pop();
            }
        }
        edges.insert(file.clone(), to);
    }
    edges
}

/// A chain of files that leads back to its start, if any.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        file: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|f| f == file) {
            let mut cycle = path[at..].to_vec();
            cycle.push(file.to_owned());
            return Some(cycle);
        }
        if done.contains(file) {
            return None;
        }
        path.push(file.to_owned());
        for next in edges.get(file).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(file.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|file| visit(file, edges, &mut Vec::new(), &mut done))
}

/// The layer a file is in: its top folder, or `top` for the files beside them.
fn layer(file: &str) -> &str {
    file.split_once('/').map_or("top", |(folder, _)| folder)
}

/// Imports that go against the layers.
fn layer_violations(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let allowed = |from: &str, to: &str| match from {
        "core" => to == "core",
        "net" => matches!(to, "core" | "net" | "top"),
        "client" => matches!(to, "core" | "net" | "client" | "top"),
        "host" => matches!(to, "core" | "net" | "host" | "top"),
        _ => true,
    };
    let mut bad = Vec::new();
    for (file, to) in edges {
        for target in to {
            if !allowed(layer(file), layer(target)) {
                bad.push(format!("{file} imports {target}"));
            }
        }
    }
    bad
}

#[test]
fn no_two_files_import_each_other_and_the_layers_hold() {
    let sources = sources();
    assert!(sources.len() > 60, "read only {} files", sources.len());
    let edges = imports(&sources);
    let links: usize = edges.values().map(BTreeSet::len).sum();
    assert!(links > 200, "only {links} imports found: is the reader broken?");
    assert_eq!(find_cycle(&edges), None, "an import cycle");
    assert_eq!(layer_violations(&edges), Vec::<String>::new());
}

#[test]
fn a_cycle_and_a_layer_break_are_found() {
    let mut sources = BTreeMap::new();
    sources.insert("core/a.rs".to_owned(), "use crate::b::{Thing, other};\n".to_owned());
    sources.insert("core/b.rs".to_owned(), "use crate::a::Other; // crate::net::x\n".to_owned());
    sources.insert("core/c.rs".to_owned(), "fn f() { crate::c::x(); }\n".to_owned());
    sources.insert("net/mod.rs".to_owned(), "use crate::core::b::Thing;\n".to_owned());
    sources.insert("net/x.rs".to_owned(), "#[cfg(test)]\nmod tests { use crate::client::X; }\n".to_owned());
    sources.insert("client/mod.rs".to_owned(), String::new());
    sources.insert("host/mod.rs".to_owned(), "use crate::client::Y;\n".to_owned());
    let edges = imports(&sources);
    let cycle = find_cycle(&edges).expect("a ↔ b");
    assert!(cycle.contains(&"core/a.rs".to_owned()) && cycle.contains(&"core/b.rs".to_owned()), "{cycle:?}");
    assert_eq!(layer_violations(&edges), ["host/mod.rs imports client/mod.rs"], "comments and tests do not count");
    // The core's `crate::` is the core: core/b.rs reaches core/a.rs, net/mod.rs reaches core/b.rs.
    assert!(edges["core/b.rs"].contains("core/a.rs"), "{edges:?}");
    assert!(edges["net/mod.rs"].contains("core/b.rs"), "{edges:?}");
    assert!(edges["core/c.rs"].is_empty(), "a file's paths to itself are no import: {edges:?}");
}
