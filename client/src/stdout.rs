//! Standard output that a reader may close early (`lockfair-client … | head -1`): the write fails
//! with `EPIPE` (Rust ignores SIGPIPE, so nothing kills us), and `main` ends quietly with status
//! 0, as ripgrep does, instead of panicking in `print!`.

use std::io::{self, Write};

/// Writes `text` to standard output and flushes it.
pub(crate) fn print(text: impl AsRef<[u8]>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_ref())?;
    out.flush()
}

/// Like [`print`], with a newline after `text`.
pub(crate) fn println(text: impl AsRef<str>) -> io::Result<()> {
    print(format!("{}\n", text.as_ref()))
}

/// True if `e` comes from a reader that closed our standard output.
pub(crate) fn reader_left(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}
