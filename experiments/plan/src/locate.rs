//! From byte offsets in a manifest to what a person can act on: line numbers and dotted field
//! paths (`quick.events[1].start_ms`).

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// The 1-based line containing byte `offset` (the last line if `offset` is past the end).
pub(crate) fn line_of(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The 1-based column (in characters) of byte `offset` within its line.
pub(crate) fn column_of(src: &str, offset: usize) -> usize {
    let end = floor_char_boundary(src, offset.min(src.len()));
    let line_start = src[..end].rfind('\n').map_or(0, |i| i + 1);
    src[line_start..end].chars().count() + 1
}

fn floor_char_boundary(src: &str, mut offset: usize) -> usize {
    while offset > 0 && !src.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The dotted path of the innermost key or value whose span contains `span.start`, or an
/// empty string when it lies outside every key (e.g. on a table header).
pub(crate) fn field_path_at(src: &str, span: &Range<usize>) -> String {
    let Ok(root) = DeTable::parse(src) else {
        return String::new();
    };
    let mut path = Vec::new();
    descend_table(root.get_ref(), span.start, &mut path);
    path.join(".")
}

fn descend_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) {
    for (key, value) in table.iter() {
        let in_key = key.span().contains(&offset);
        let in_value = value.span().contains(&offset);
        if in_key || in_value {
            path.push(key.get_ref().to_string());
            if in_value {
                descend_value(value.get_ref(), offset, path);
            }
            return;
        }
    }
    // A table header (`[quick]`) is not inside its key's span: look for a nested table whose
    // contents start after the offset's line, which is where toml reports table-level errors.
    for (key, value) in table.iter() {
        if let DeValue::Table(inner) = value.get_ref()
            && contains_offset(inner, offset)
        {
            path.push(key.get_ref().to_string());
            descend_table(inner, offset, path);
            return;
        }
    }
}

fn contains_offset(table: &DeTable<'_>, offset: usize) -> bool {
    table.iter().any(|(k, v)| {
        k.span().contains(&offset)
            || v.span().contains(&offset)
            || matches!(v.get_ref(), DeValue::Table(t) if contains_offset(t, offset))
    })
}

fn descend_value(value: &DeValue<'_>, offset: usize, path: &mut Vec<String>) {
    match value {
        DeValue::Table(table) => descend_table(table, offset, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if item.span().contains(&offset) {
                    if let Some(last) = path.last_mut() {
                        last.push_str(&format!("[{i}]"));
                    }
                    descend_value(item.get_ref(), offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_of(src, 0), 1);
        assert_eq!(line_of(src, 6), 2);
        assert_eq!(column_of(src, 6), 1);
        assert_eq!(column_of(src, src.find('=').unwrap()), 3);
        assert_eq!(line_of(src, 10_000), 3);
    }

    #[test]
    fn field_paths_name_nested_keys_and_array_items() {
        let src = "[quick]\nevents = [{ kind = \"cpu-hog\" }, { start_ms = 5 }]\n";
        let at = src.find("start_ms").unwrap();
        assert_eq!(
            field_path_at(src, &(at..at + 1)),
            "quick.events[1].start_ms"
        );
        let at = src.find('5').unwrap();
        assert_eq!(
            field_path_at(src, &(at..at + 1)),
            "quick.events[1].start_ms"
        );
    }
}
