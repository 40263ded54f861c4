//! Reads newline-terminated lines from a child's pipe with a cap on each line's length.
//!
//! A sidecar is user code; one that writes a gigabyte without a newline must not make the daemon
//! buffer a gigabyte. A line longer than the cap is cut: the reader keeps its first `max` bytes
//! (enough to find a reply's `id`), skips the rest up to the next newline, and carries on.

use tokio::io::{self, AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// One line, without its newline.
#[derive(Debug, PartialEq)]
pub(crate) struct Line<'a> {
    /// The line, or its first `max` bytes when `truncated`.
    pub(crate) bytes: &'a [u8],
    /// The line was longer than `max`; the rest was skipped.
    pub(crate) truncated: bool,
}

pub(crate) struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// The next line, or `None` at the end of the stream. A last line without a newline counts.
    pub(crate) async fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let limit = u64::try_from(self.max)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let read = (&mut self.inner)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .await?;
        if read == 0 {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            return Ok(Some(self.line(false)));
        }
        if self.buf.len() <= self.max {
            return Ok(Some(self.line(false)));
        }
        self.buf.truncate(self.max);
        self.skip_rest_of_line().await?;
        Ok(Some(self.line(true)))
    }

    fn line(&self, truncated: bool) -> Line<'_> {
        Line {
            bytes: &self.buf,
            truncated,
        }
    }

    /// Discards input up to and including the next newline (or to the end of the stream), without
    /// holding more than the pipe's buffer in memory.
    async fn skip_rest_of_line(&mut self) -> io::Result<()> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return Ok(());
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.inner.consume(newline + 1);
                    return Ok(());
                }
                None => {
                    let len = available.len();
                    self.inner.consume(len);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::BufReader;

    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<(String, bool)> {
        let mut reader = LineReader::new(BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            out.push((
                String::from_utf8(line.bytes.to_vec()).unwrap(),
                line.truncated,
            ));
        }
        out
    }

    fn owned(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
        expected.iter().map(|(s, t)| (s.to_string(), *t)).collect()
    }

    #[tokio::test]
    async fn splits_lines_and_keeps_a_last_line_without_newline() {
        assert_eq!(
            lines(b"one\n\ntwo\nthree", 10).await,
            owned(&[
                ("one", false),
                ("", false),
                ("two", false),
                ("three", false)
            ])
        );
    }

    #[tokio::test]
    async fn a_line_of_exactly_max_bytes_is_whole() {
        assert_eq!(
            lines(b"12345\nok\n", 5).await,
            owned(&[("12345", false), ("ok", false)])
        );
    }

    #[tokio::test]
    async fn a_longer_line_is_cut_and_the_next_line_survives() {
        assert_eq!(
            lines(b"123456789abcdef\nok\n", 5).await,
            owned(&[("12345", true), ("ok", false)])
        );
    }

    #[tokio::test]
    async fn an_endless_line_is_cut_at_the_end_of_the_stream() {
        let input = vec![b'x'; 10_000];
        assert_eq!(lines(&input, 8).await, owned(&[("xxxxxxxx", true)]));
    }
}
