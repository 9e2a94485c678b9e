//! OpenMetrics text into a [`BlockImporter`], through the scrape crate's
//! parser (the one scrapes use; no second parser).
//!
//! The input is streamed: it is read in parts of about [`PART`] bytes cut
//! at line ends, and each part is parsed on its own (OpenMetrics is line
//! based), so memory does not grow with the file. Every bad line is
//! reported with its line number, up to [`MAX_REPORTED`] of them: after a
//! line that does not parse, parsing resumes on the next line; once a bad
//! line has been seen no more samples are imported (the run will fail and
//! leave nothing), but the rest of the input is still checked.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use vigil_model::{Labels, LabelsBuilder};
use vigil_scrape::parse::{Entry, Format, ParseError, ParseErrorKind, ParseOptions, Parser};
use vigil_tsdb::import::{BlockImporter, ImportError, ImportSeries};

/// Bytes read and parsed at a time.
pub(crate) const PART: usize = 8 << 20;

/// Bad lines reported by line number; the rest are only counted.
pub(crate) const MAX_REPORTED: usize = 100;

/// One bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// Why an OpenMetrics import failed.
#[derive(Debug)]
pub(crate) enum OmError {
    /// The input could not be read.
    Read(std::io::Error),
    /// Lines are malformed or unusable.
    BadLines {
        /// The first [`MAX_REPORTED`] of them.
        lines: Vec<BadLine>,
        /// How many more there are.
        more: u64,
    },
    /// Writing blocks failed.
    Import(ImportError),
}

impl fmt::Display for OmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OmError::Read(e) => write!(f, "reading the input: {e}"),
            OmError::BadLines { lines, more } => {
                let n = lines.len() as u64 + more;
                write!(f, "{n} bad line{}", if n == 1 { "" } else { "s" })?;
                for l in lines {
                    write!(f, "\n  {l}")?;
                }
                if *more > 0 {
                    write!(f, "\n  ... and {more} more")?;
                }
                Ok(())
            }
            OmError::Import(e) => write!(f, "writing blocks: {e}"),
        }
    }
}

/// The state of one import across parts.
struct Reader<'i> {
    imp: &'i mut BlockImporter,
    extra: &'i [(String, String)],
    /// Series as written (`name{labels}`) to their handle: repeated series
    /// are found without building labels.
    cache: HashMap<String, ImportSeries>,
    bad: Vec<BadLine>,
    more_bad: u64,
    /// Line of `# EOF`, once seen.
    eof_line: Option<u64>,
    /// Whether data after `# EOF` was reported.
    after_eof: bool,
}

impl Reader<'_> {
    fn report(&mut self, line: u64, what: String) {
        if self.bad.len() < MAX_REPORTED {
            self.bad.push(BadLine { line, what });
        } else {
            self.more_bad += 1;
        }
    }

    fn failed(&self) -> bool {
        !self.bad.is_empty()
    }

    /// Parses one part, whose first line is line `first_line` of the input.
    /// `last` says whether the input ends with it.
    fn part(&mut self, part: &[u8], first_line: u64, last: bool) -> Result<(), OmError> {
        if self.eof_line.is_some() {
            if !part.is_empty() && !self.after_eof {
                self.report(first_line, "unexpected data after # EOF".into());
            }
            self.after_eof = true;
            return Ok(());
        }
        // Parse from `start`, which is at line `line`; after an error,
        // resume at the next line.
        let mut start = 0usize;
        let mut line = first_line;
        while start <= part.len() {
            let slice = &part[start..];
            match self.parse(slice, line, last) {
                Ok(Done::Eof(at)) => {
                    self.eof_line = Some(at);
                    return Ok(());
                }
                Ok(Done::EndOfPart) => return Ok(()),
                Err(Fatal(e)) => return Err(e),
                Ok(Done::Bad(e)) => {
                    let abs = line + e.line as u64 - 1;
                    self.report(abs, e.to_string_without_line());
                    match e.kind {
                        ParseErrorKind::MissingEof => return Ok(()),
                        ParseErrorKind::DataAfterEof => {
                            self.eof_line = Some(abs);
                            self.after_eof = true;
                            return Ok(());
                        }
                        _ => {}
                    }
                    // Resume after the bad line.
                    match nth_line_start(slice, e.line) {
                        Some(next) => {
                            start += next;
                            line = abs + 1;
                        }
                        None => return Ok(()),
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses `input` (starting at line `line`) until its end, `# EOF` or
    /// the first error.
    fn parse(&mut self, input: &[u8], line: u64, last: bool) -> Result<Done, Fatal> {
        let mut p = Parser::new(input, Format::OpenMetrics, ParseOptions::default());
        loop {
            let entry = match p.next() {
                Ok(Some(e)) => e,
                Ok(None) => {
                    // `# EOF` ends the input.
                    let at = line + count_lines(&input[..p.entry_offset()]);
                    return Ok(Done::Eof(at));
                }
                Err(e) if e.kind == ParseErrorKind::MissingEof && !last => {
                    return Ok(Done::EndOfPart);
                }
                Err(e) => return Ok(Done::Bad(e)),
            };
            let Entry::Sample(s) = entry else {
                continue;
            };
            let line_of = |p: &Parser<'_>| line + count_lines(&input[..p.entry_offset()]);
            let Some(t) = s.timestamp else {
                let l = line_of(&p);
                self.report(
                    l,
                    format!(
                        "{}: no timestamp (every backfilled sample needs one)",
                        s.series
                    ),
                );
                continue;
            };
            let id = match self.cache.get(s.series) {
                Some(&id) => id,
                None => {
                    let labels = match p.labels() {
                        Ok(l) => l,
                        Err(e) => {
                            let l = line_of(&p);
                            self.report(l, format!("{}: {e}", s.series));
                            continue;
                        }
                    };
                    let labels = with_extra(labels, self.extra);
                    let id = match self.imp.series(labels) {
                        Ok(id) => id,
                        Err(e) => {
                            let l = line_of(&p);
                            self.report(l, format!("{}: {e}", s.series));
                            continue;
                        }
                    };
                    self.cache.insert(s.series.to_string(), id);
                    id
                }
            };
            let added = if self.failed() {
                // Only check: the import will fail anyway.
                self.imp.check_time(t)
            } else {
                self.imp.add(id, t, s.value)
            };
            match added {
                Ok(()) => {}
                Err(e @ ImportError::TimestampOutOfRange(_)) => {
                    let l = line_of(&p);
                    self.report(l, format!("{}: {e}", s.series));
                }
                Err(e) => return Err(Fatal(OmError::Import(e))),
            }
        }
    }
}

/// How parsing a slice ended.
enum Done {
    /// At `# EOF`, on this line.
    Eof(u64),
    /// At the end of a part that is not the last.
    EndOfPart,
    /// At a line that does not parse.
    Bad(ParseError),
}

/// An error that stops the import at once.
struct Fatal(OmError);

trait WithoutLine {
    fn to_string_without_line(&self) -> String;
}

impl WithoutLine for ParseError {
    /// The message without its `line N: ` prefix (the caller adds the line
    /// number in the whole input).
    fn to_string_without_line(&self) -> String {
        let s = self.to_string();
        match s.split_once(": ") {
            Some((prefix, rest)) if prefix.starts_with("line ") => rest.to_string(),
            _ => s,
        }
    }
}

fn with_extra(labels: Labels, extra: &[(String, String)]) -> Labels {
    if extra.is_empty() {
        return labels;
    }
    let mut b = LabelsBuilder::from_labels(&labels);
    for (k, v) in extra {
        b.set(k, v);
    }
    b.build()
}

/// Newlines in `b`.
pub(crate) fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// The byte offset where line `n + 1` (1-based) of `b` starts, if it does.
fn nth_line_start(b: &[u8], n: usize) -> Option<usize> {
    b.iter()
        .enumerate()
        .filter(|(_, &c)| c == b'\n')
        .nth(n.checked_sub(1)?)
        .map(|(i, _)| i + 1)
}

/// Reads OpenMetrics text from `input` into `imp`. `progress` is called
/// with the bytes read so far after each part. On success the caller
/// commits the importer; on error it drops it, and nothing is written.
pub(crate) fn import(
    input: &mut dyn Read,
    imp: &mut BlockImporter,
    extra: &[(String, String)],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), OmError> {
    let mut r = Reader {
        imp,
        extra,
        cache: HashMap::new(),
        bad: Vec::new(),
        more_bad: 0,
        eof_line: None,
        after_eof: false,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(PART + (PART >> 2));
    let mut line: u64 = 1;
    let mut read_total: u64 = 0;
    let mut ended = false;
    while !ended {
        // Read at least PART bytes and up to a line end (more when a line
        // is longer), or to the end. What is left over from the last part
        // holds no line end.
        let mut line_end = false;
        while !(buf.len() >= PART && line_end) {
            let old = buf.len();
            buf.resize(old + (1 << 16), 0);
            let n = loop {
                match input.read(&mut buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(OmError::Read(e)),
                }
            };
            buf.truncate(old + n);
            if n == 0 {
                ended = true;
                break;
            }
            read_total += n as u64;
            line_end |= buf[old..].contains(&b'\n');
        }
        let cut = if ended {
            buf.len()
        } else {
            buf.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)
        };
        r.part(&buf[..cut], line, ended)?;
        line += count_lines(&buf[..cut]);
        buf.drain(..cut);
        progress(read_total, r.imp.samples());
    }
    if r.failed() {
        return Err(OmError::BadLines {
            lines: r.bad,
            more: r.more_bad,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_tsdb::import::ImportOptions;

    fn run(text: &str) -> (Result<(), OmError>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut imp = BlockImporter::new(dir.path(), ImportOptions::default()).unwrap();
        let r = import(&mut text.as_bytes(), &mut imp, &[], &mut |_, _| {});
        (r, imp.samples())
    }

    fn bad(text: &str) -> Vec<String> {
        match run(text).0 {
            Err(OmError::BadLines { lines, .. }) => lines.iter().map(|l| l.to_string()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn good_input_is_imported() {
        let (r, n) = run("# TYPE a counter\na_total 1 10\na_total 2 5\nb{x=\"1\"} 3 7.5\n# EOF\n");
        r.unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = "a 1 1\nb 2\nc x 3\n\nd{x=\"1\",x=\"2\"} 1 1\ne 1 1\n# EOF\n";
        assert_eq!(
            bad(text),
            vec![
                "line 2: b: no timestamp (every backfilled sample needs one)",
                "line 3: invalid value near \"x 3\"",
                "line 4: expected a metric name, '{' or '#'",
                "line 5: d{x=\"1\",x=\"2\"}: duplicate label name \"x\"",
            ]
        );
    }

    #[test]
    fn missing_or_early_eof_is_reported() {
        assert_eq!(bad("a 1 1\n"), vec!["line 2: data does not end with # EOF"]);
        assert_eq!(
            bad("a 1 1\n# EOF\nb 1 1\n"),
            vec!["line 3: unexpected data after # EOF near \"b 1 1\""]
        );
    }

    #[test]
    fn line_numbers_hold_across_parts() {
        // More than one part: lines far into the input keep their numbers.
        let mut text = String::new();
        let n = PART / 10;
        for i in 0..n {
            text.push_str(&format!("m{{i=\"{}\"}} 1 {}\n", i % 7, i));
        }
        text.push_str("broken\n# EOF\n");
        assert!(text.len() > PART);
        assert_eq!(
            bad(&text),
            vec![format!("line {}: expected a value after the metric", n + 1)]
        );
    }

    #[test]
    fn nth_line_start_finds_lines() {
        assert_eq!(nth_line_start(b"a\nb\nc", 1), Some(2));
        assert_eq!(nth_line_start(b"a\nb\nc", 2), Some(4));
        assert_eq!(nth_line_start(b"a\nb\nc", 3), None);
        assert_eq!(nth_line_start(b"a", 0), None);
    }
}
