//! Reading line-oriented input (traces, load files) without trusting it: every line has a
//! named maximum length, so a file without newlines (`/dev/zero`, a binary passed by mistake)
//! is an error at its first line instead of a buffer that grows until memory runs out.

use std::io::{self, BufRead, Read};

/// Longest line a trace or load file may have, in bytes, without its line ending. A trace line
/// holds an operation, a key and a value (MICA values are at most 1016 bytes, printed as text);
/// 64 KiB is far beyond any of them.
pub const TRACE_LINE_BYTES_MAX: usize = 64 * 1024;

/// The lines of `input` like [`BufRead::lines`] (`\n` or `\r\n` removed), except that a line
/// longer than `max_bytes` is an [`io::ErrorKind::InvalidData`] error naming the bound, read
/// no further than `max_bytes + 1` bytes. After an error the iterator ends.
pub fn bounded_lines<R: BufRead>(input: R, max_bytes: usize) -> BoundedLines<R> {
    BoundedLines {
        input,
        max_bytes,
        failed: false,
    }
}

/// The iterator of [`bounded_lines`].
#[derive(Debug)]
pub struct BoundedLines<R> {
    input: R,
    max_bytes: usize,
    failed: bool,
}

impl<R: BufRead> Iterator for BoundedLines<R> {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<io::Result<String>> {
        if self.failed {
            return None;
        }
        let line = self.read_line();
        self.failed = matches!(line, Some(Err(_)));
        line
    }
}

impl<R: BufRead> BoundedLines<R> {
    fn read_line(&mut self) -> Option<io::Result<String>> {
        let mut bytes = Vec::new();
        // A line of `max_bytes` plus "\r\n" is still acceptable.
        let limit = self.max_bytes as u64 + 2;
        match self
            .input
            .by_ref()
            .take(limit)
            .read_until(b'\n', &mut bytes)
        {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.len() > self.max_bytes {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a line longer than {} bytes (the bound for input lines)",
                    self.max_bytes
                ),
            )));
        }
        Some(
            String::from_utf8(bytes).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "a line that is not UTF-8")
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], max: usize) -> Vec<Result<String, String>> {
        bounded_lines(text, max)
            .map(|l| l.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn lines_read_like_std_within_the_bound() {
        let got = lines(b"a\r\nbb\n\nccc", 3);
        assert_eq!(
            got,
            vec![
                Ok("a".into()),
                Ok("bb".into()),
                Ok("".into()),
                Ok("ccc".into())
            ]
        );
        assert_eq!(lines(b"abc\r\n", 3), vec![Ok("abc".to_string())]);
    }

    #[test]
    fn a_long_line_is_one_error_and_ends_the_input() {
        let got = lines(b"ok\nabcd\nnever read\n", 3);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok("ok".to_string()));
        assert!(got[1].as_ref().unwrap_err().contains("longer than 3 bytes"));
        assert!(lines(&[0xff, b'\n'], 3)[0].is_err(), "not UTF-8");
    }

    #[test]
    fn endless_input_without_newlines_stops_at_the_bound() {
        let zeros = io::BufReader::new(io::repeat(0));
        let mut it = bounded_lines(zeros, TRACE_LINE_BYTES_MAX);
        assert!(it.next().expect("one item").is_err());
        assert!(it.next().is_none());
    }
}
