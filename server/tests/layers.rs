//! The server's layer order (documented in `src/lib.rs`): no module imports one
//! above it. Reads the sources, so a back-edge fails here, not in review.

use std::collections::BTreeSet;
use std::path::Path;

/// Each top-level module and its layer, top (1) to bottom; leaves (0) import no
/// other layer and may be imported by any.
const LAYERS: &[(&str, u8)] = &[
    ("app", 1),
    ("triage", 2),
    ("ingest", 2),
    ("deletion", 2),
    ("retention", 2),
    ("pipeline", 3),
    ("reprocess", 3),
    ("vault", 4),
    ("index", 4),
    ("storage", 4),
    ("crypto", 5),
    ("config", 5),
    ("report_id", 0),
    ("metrics", 0),
    ("tokens", 0),
    ("version", 0),
];

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
        .unwrap_or_else(|| panic!("module {module} has no layer: add it to LAYERS and lib.rs"))
}

/// The top-level modules `text` names through `crate::` paths (code, not comments).
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the names at the top of the group.
            let mut depth = 0;
            let mut in_path = false;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(std::mem::take(&mut name));
                        in_path = false;
                    }
                    ':' if depth == 0 => in_path = true,
                    c if depth == 0 && !in_path && (c.is_alphanumeric() || c == '_') => {
                        name.push(c)
                    }
                    _ => {}
                }
            }
            found.insert(name);
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    // Items lib.rs re-exports count as imports of the module that defines them.
    found
        .into_iter()
        .filter_map(|name| match name.as_str() {
            "App" | "AppState" | "StartError" => Some("app".to_owned()),
            "Config" => Some("config".to_owned()),
            _ if name.starts_with(|c: char| c.is_ascii_lowercase()) => Some(name),
            _ => None,
        })
        .collect()
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut back_edges = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs");
        // The binary and the crate root sit above every layer.
        if matches!(module, "main" | "cli" | "lib") {
            continue;
        }
        let from = layer(module);
        for target in imports(&std::fs::read_to_string(&file).unwrap()) {
            if target == module {
                continue;
            }
            let to = layer(&target);
            let allowed = to == 0 || (from != 0 && to >= from);
            if !allowed {
                back_edges.push(format!("{} imports {target}", rel.display()));
            }
        }
    }
    assert!(
        back_edges.is_empty(),
        "imports against the layer order: {back_edges:#?}"
    );
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let text = "use crate::index::Index;\n// crate::app is a comment\nuse crate::{crypto, vault::{self, Vault}, retention, storage::put};\nlet x = crate::Config::load;\nuse crate::AppState;";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(
        found,
        [
            "app",
            "config",
            "crypto",
            "index",
            "retention",
            "storage",
            "vault"
        ]
    );
}
