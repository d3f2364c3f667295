//! The import structure, checked: the server's modules import only downwards in
//! the layer order documented in `server/src/lib.rs`, and no crate of the
//! workspace has an import circle between its files.
//!
//! The check reads the sources as text: every `crate::…`, `super::…` and
//! `self::…` path outside comments and `#[cfg(test)]` modules is an edge from the
//! file that writes it to the file of the module it names. Edges between a module
//! and its own submodules (declarations, re-exports) are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The server's layers, top first. A module may import its own layer and the ones
/// below it, never one above. Leaf modules (the last layer) are for everyone.
const SERVER_LAYERS: &[(&str, &[&str])] = &[
    ("binary", &["main", "cli"]),
    ("app", &["app"]),
    (
        "http edge",
        &[
            "triage",
            "ingest",
            "deletion",
            "retention",
            "lifecycle",
            "limits",
            "throttle",
        ],
    ),
    ("processing", &["pipeline", "webhooks"]),
    ("vault, index and storage", &["vault", "index", "storage"]),
    ("crypto and config", &["crypto", "config"]),
    (
        "leaves",
        &["report_id", "metrics", "tokens", "version", "grouping"],
    ),
];

/// A file's module path: `lib.rs` is `[]`, `a/mod.rs` is `[a]`, `a/b.rs` is `[a, b]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    match last.trim_end_matches(".rs") {
        "lib" if parts.is_empty() => {}
        "mod" => {}
        // A binary's root is a module of its own beside the library's.
        stem => parts.push(stem.to_owned()),
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            // Test modules close the file in this code base.
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let line = line.split(" // ").next().unwrap();
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every module path a piece of code refers to, relative to `module`.
fn references(code: &str, module: &[String]) -> BTreeSet<Vec<String>> {
    let path = regex::Regex::new(
        r"\b(crate|super|self)((?:::(?:super|[A-Za-z_][A-Za-z0-9_]*))*)(::\{([^}]*)\})?",
    )
    .unwrap();
    let mut found = BTreeSet::new();
    for caps in path.captures_iter(code) {
        // `super` of a file module `a::b` is `a`; of `a/mod.rs` (module `a`) it is the
        // parent of `a` too. `self` is the module itself.
        let mut base: Vec<String> = match &caps[1] {
            "crate" => Vec::new(),
            "self" => module.to_vec(),
            _ => {
                let mut m = module.to_vec();
                m.pop();
                m
            }
        };
        for segment in caps[2].split("::").filter(|s| !s.is_empty()) {
            if segment == "super" {
                base.pop();
            } else {
                base.push(segment.to_owned());
            }
        }
        match caps.get(4) {
            Some(group) => {
                for item in group.as_str().split(',') {
                    let mut full = base.clone();
                    full.extend(
                        item.trim()
                            .split("::")
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty() && s != "self" && s != "{"),
                    );
                    found.insert(full);
                }
            }
            None => {
                found.insert(base);
            }
        }
    }
    found
}

/// The import graph of one crate's `src`: file module -> file modules it names.
fn graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    // Names the crate root re-exports (`pub use app::App;`), so `crate::App` is
    // an edge to `app` and not to the root.
    let mut reexports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(root) = modules.get(&Vec::new()) {
        let text = std::fs::read_to_string(root).unwrap();
        for line in code_of(&text).lines() {
            let Some(rest) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            for path in references(&format!("crate::{rest}"), &[]) {
                if let Some(name) = path.last() {
                    reexports.insert(name.clone(), path.clone());
                }
            }
        }
    }
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let mut targets = BTreeSet::new();
        for mut reference in references(&code_of(&text), module) {
            if let Some(full) = reference.first().and_then(|n| reexports.get(n)) {
                reference.splice(..1, full.iter().cloned());
            }
            // The longest prefix of the path that is a file of this crate.
            let target = (0..=reference.len())
                .rev()
                .map(|n| reference[..n].to_vec())
                .find(|prefix| modules.contains_key(prefix));
            if let Some(target) = target {
                let related = target.starts_with(module) || module.starts_with(&target);
                if !related {
                    targets.insert(target);
                }
            }
        }
        edges.insert(module.clone(), targets);
    }
    edges
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn layer_of(module: &[String]) -> Option<usize> {
    let top = module.first()?;
    SERVER_LAYERS
        .iter()
        .position(|(_, names)| names.contains(&top.as_str()))
}

#[test]
fn server_modules_import_only_downwards() {
    let edges = graph(&workspace().join("server/src"));
    let mut problems = Vec::new();
    for (from, targets) in &edges {
        if from.is_empty() {
            continue; // lib.rs / main.rs declare and re-export.
        }
        let Some(from_layer) = layer_of(from) else {
            problems.push(format!(
                "{} is in no layer: add it to SERVER_LAYERS and to lib.rs's docs",
                from.join("::")
            ));
            continue;
        };
        for to in targets {
            let Some(to_layer) = layer_of(to) else {
                continue;
            };
            if to_layer < from_layer {
                problems.push(format!(
                    "{} ({}) imports {} ({}), a higher layer",
                    from.join("::"),
                    SERVER_LAYERS[from_layer].0,
                    to.join("::"),
                    SERVER_LAYERS[to_layer].0,
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Strongly connected components of more than one file (Tarjan).
fn circles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            let Some((w, _)) = edges.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.out
}

/// Circles that exist today and are being taken apart: each entry must still be
/// found (remove it when it is gone), and no other circle may appear. Entries are
/// the crate and the circle's modules, sorted.
const KNOWN_CIRCLES: &[(&str, &[&str])] = &[];

#[test]
fn no_crate_has_an_import_circle() {
    let mut found = BTreeSet::new();
    for krate in ["client", "report", "symbols", "symbols/cli", "server"] {
        let src = workspace().join(krate).join("src");
        for circle in circles(&graph(&src)) {
            let names: BTreeSet<String> = circle.iter().map(|m| m.join("::")).collect();
            found.insert((krate.to_owned(), names.into_iter().collect::<Vec<_>>()));
        }
    }
    let known: BTreeSet<(String, Vec<String>)> = KNOWN_CIRCLES
        .iter()
        .map(|(krate, names)| {
            let names = names.iter().map(|n| (*n).to_owned()).collect();
            ((*krate).to_owned(), names)
        })
        .collect();
    let new: Vec<String> = found
        .difference(&known)
        .map(|(krate, names)| format!("{krate}: {}", names.join(" <-> ")))
        .collect();
    assert!(new.is_empty(), "import circles:\n{}", new.join("\n"));
    let gone: Vec<String> = known
        .difference(&found)
        .map(|(krate, names)| format!("{krate}: {}", names.join(" <-> ")))
        .collect();
    assert!(
        gone.is_empty(),
        "circles taken apart: remove them from KNOWN_CIRCLES:\n{}",
        gone.join("\n")
    );
}

#[test]
fn the_checker_sees_a_back_edge_and_a_circle() {
    // The reader itself: a `use super::…` from a child and a `crate::{…}` group.
    let module = vec!["a".to_owned(), "b".to_owned()];
    let refs = references(
        &code_of("use super::c::Thing;\nuse crate::{d::e, f};\n// use crate::g;\n"),
        &module,
    );
    assert!(refs.contains(&vec!["a".to_owned(), "c".to_owned(), "Thing".to_owned()]));
    assert!(refs.contains(&vec!["d".to_owned(), "e".to_owned()]));
    assert!(refs.contains(&vec!["f".to_owned()]));
    assert!(!refs.iter().any(|r| r.first().is_some_and(|s| s == "g")));

    let mut edges = BTreeMap::new();
    let x = vec!["x".to_owned()];
    let y = vec!["y".to_owned()];
    edges.insert(x.clone(), BTreeSet::from([y.clone()]));
    edges.insert(y.clone(), BTreeSet::from([x.clone()]));
    assert_eq!(circles(&edges).len(), 1);
    assert_eq!(layer_of(&["app".to_owned()]), Some(1));
    assert!(layer_of(&["triage".to_owned()]) < layer_of(&["vault".to_owned()]));
}
