//! The README's configuration table must match the variables the code reads
//! (`config::VARIABLES`): same names, same defaults, nothing missing or extra.

use std::collections::BTreeMap;

use tf_lock_reaper::config::{CLI_VARIABLES, VARIABLES};

/// `| `NAME` | default | meaning |` rows of the README's configuration table.
fn readme_rows() -> BTreeMap<String, (String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            (cells.len() == 3 && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .then(|| (name.to_string(), (cells[1].trim_matches('`').to_string(), cells[2].to_string())))
        })
        .collect()
}

#[test]
fn readme_configuration_table_matches_the_code() {
    let rows = readme_rows();
    for v in VARIABLES.iter().chain(CLI_VARIABLES) {
        let (default, meaning) = rows.get(v.name).unwrap_or_else(|| panic!("README table lacks {}", v.name));
        assert_eq!(default, v.default, "README default of {}", v.name);
        assert_eq!(meaning, v.meaning, "README meaning of {}", v.name);
    }
    let known: Vec<&str> = VARIABLES.iter().chain(CLI_VARIABLES).map(|v| v.name).collect();
    for name in rows.keys() {
        assert!(known.contains(&name.as_str()), "README documents {name}, which the code does not read");
    }
}
