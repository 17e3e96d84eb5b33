//! Every on-disk struct's field offsets and sizes match the tables in
//! format-spec/ (the spec comes first; this keeps the code honest).
//!
//! Each table is introduced by `<!-- layout: StructName -->` and has the
//! columns `| Offset | Size | Type | Field | Meaning |`.

use std::collections::HashMap;
use vexfs::format::all_layouts;

/// (field, offset, size) rows of every marked table, by struct name.
fn spec_tables() -> HashMap<String, Vec<(String, usize, usize)>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/format-spec");
    let mut tables = HashMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("format-spec/ exists").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            let Some(name) = line
                .trim()
                .strip_prefix("<!-- layout:")
                .and_then(|r| r.strip_suffix("-->"))
            else {
                continue;
            };
            let mut rows = Vec::new();
            while let Some(l) = lines.peek() {
                if !l.trim_start().starts_with('|') {
                    if rows.is_empty() && l.trim().is_empty() {
                        lines.next();
                        continue;
                    }
                    break;
                }
                let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
                lines.next();
                let (Ok(off), Ok(size)) = (cells[0].parse::<usize>(), cells.get(1).unwrap_or(&"").parse::<usize>())
                else {
                    continue;
                };
                rows.push((cells[3].trim_matches('`').to_string(), off, size));
            }
            let prev = tables.insert(name.trim().to_string(), rows);
            assert!(prev.is_none(), "layout {name} is described twice in format-spec/");
        }
    }
    tables
}

#[test]
fn every_struct_matches_its_spec_table() {
    let tables = spec_tables();
    let mut failures = Vec::new();
    for l in all_layouts() {
        let Some(rows) = tables.get(l.name) else {
            failures.push(format!(
                "{}: no `<!-- layout: {} -->` table in format-spec/",
                l.name, l.name
            ));
            continue;
        };
        let code: Vec<(String, usize, usize)> = l
            .fields
            .iter()
            .map(|(f, o, s)| (f.to_string(), o + l.origin, *s))
            .collect();
        if &code != rows {
            failures.push(format!("{}:\n  code: {code:?}\n  spec: {rows:?}", l.name));
        }
        let covered: usize = l.fields.iter().map(|f| f.2).sum();
        if covered != l.size {
            failures.push(format!("{}: fields cover {covered} of {} bytes", l.name, l.size));
        }
    }
    assert!(failures.is_empty(), "spec/code mismatches:\n{}", failures.join("\n"));
}

#[test]
fn the_spec_has_every_chapter() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/format-spec");
    for ch in [
        "01-overview",
        "02-superblock",
        "03-features",
        "04-allocation",
        "05-inodes",
        "06-directories",
        "07-xattrs",
        "08-vectors",
        "09-hnsw",
        "10-journal",
        "11-events",
        "12-ioctl",
        "13-checksums",
        "14-media",
    ] {
        assert!(
            std::path::Path::new(&format!("{dir}/{ch}.md")).exists(),
            "format-spec/{ch}.md is missing"
        );
    }
}
