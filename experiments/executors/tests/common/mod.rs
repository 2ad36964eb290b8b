//! What the executors' tests that start real role processes share.

use naam_executors::LocalOptions;

/// The local testbed's options with `naam-role` built (debug) from this workspace.
pub fn local_options() -> LocalOptions {
    LocalOptions::with_role_binary(
        naam_launch::build_role_binary(
            env!("CARGO").as_ref(),
            env!("CARGO_MANIFEST_DIR").as_ref(),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    )
}
