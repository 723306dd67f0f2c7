//! Printing an error the way both programs do: one line, every source after a colon.

/// An error and its sources on one line, the way `anyhow` prints `{:#}`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot map the arena")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_source_follows_after_a_colon() {
        let e = Outer(std::io::Error::other("out of memory"));
        assert_eq!(error_chain(&e), "cannot map the arena: out of memory");
    }
}
