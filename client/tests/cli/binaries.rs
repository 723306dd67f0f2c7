//! The two binaries this package builds: each names itself, and the server is of this very build.

use std::process::Command;

use crate::util::{HANG, client_bin, run_within, server_bin};

#[test]
fn each_binary_names_itself_and_the_server_is_of_this_build() {
    for (bin, name) in [
        (client_bin(), "lockfair-client"),
        (server_bin(), "lockfair-server"),
    ] {
        let out = run_within(Command::new(&bin).arg("--version"), HANG);
        assert!(out.status.success(), "{name} --version");
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            said.split_whitespace().next(),
            Some(name),
            "{}: {said}",
            bin.display()
        );
    }
    // What compare and bench check before they start a server: this build's sources.
    let out = run_within(Command::new(server_bin()).arg("--build-id"), HANG);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        lockfair::BUILD_ID
    );
}
