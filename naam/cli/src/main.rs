//! `naam`: the command-line tool that binds the harness together.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("naam: no commands yet; see README.md")
}
