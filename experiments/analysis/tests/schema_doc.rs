//! experiments/SCHEMA.md documents every frame column exactly as `schema.rs` defines it.
//! `UPDATE_EXPECT=1 cargo test -p naam-analysis --test schema_doc` regenerates the section.

use std::fmt::Write as _;
use std::path::Path;

use naam_analysis::schema::{FRAMES, FRAMES_SCHEMA_VERSION};

const BEGIN: &str = "<!-- frames:begin";
const END: &str = "<!-- frames:end -->";

fn generated_section() -> String {
    let mut out = format!("\nFrames schema version {FRAMES_SCHEMA_VERSION}.\n");
    for (name, columns) in FRAMES {
        let _ = write!(
            out,
            "\n### `{name}`\n\n| column | type | meaning |\n|---|---|---|\n"
        );
        for c in columns {
            let _ = writeln!(out, "| `{}` | {} | {} |", c.name, c.dtype.name(), c.doc);
        }
    }
    out
}

#[test]
fn schema_md_documents_every_frame_column() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../SCHEMA.md");
    let text = std::fs::read_to_string(&path).expect("experiments/SCHEMA.md exists");
    let begin = text
        .find(BEGIN)
        .expect("SCHEMA.md has the frames:begin marker");
    let body_start = begin + text[begin..].find("-->").expect("marker closes") + 3;
    let end = text.find(END).expect("SCHEMA.md has the frames:end marker");
    let current = &text[body_start..end];
    let expected = generated_section();
    if current != expected {
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let updated = format!("{}{}{}", &text[..body_start], expected, &text[end..]);
            std::fs::write(&path, updated).expect("rewrite SCHEMA.md");
            return;
        }
        panic!("experiments/SCHEMA.md's frame tables are stale; rerun with UPDATE_EXPECT=1");
    }
}
