//! Remote commands built from quoted arguments only.
//!
//! SSH runs a command as one line through the remote user's shell. A line made by formatting
//! strings is an injection waiting for a file name with a space, a quote or a `$`. Here every
//! argument is a [`ShellWord`] — any string without NUL — rendered in single quotes (a `'` inside
//! becomes `'\''`), which every POSIX shell reads back byte for byte. The only unquoted text a
//! [`ShellLine`] can contain is `&'static str` operator text written in this crate's source
//! (`&&`, `>`, `&`), and numbers: no runtime string can reach the shell unquoted.

use std::fmt;

/// Why a command could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// An argument contained a NUL byte, which no shell argument (no C string) can carry.
    #[error(
        "argument {index} contains a NUL byte, which a remote command cannot carry: {preview:?}"
    )]
    NulByte {
        /// Position of the argument (0 is the program).
        index: usize,
        /// The argument up to its first NUL.
        preview: String,
    },
    /// The program name was empty.
    #[error("a remote command needs a program; it was empty")]
    EmptyProgram,
    /// An environment variable name was not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("environment variable name {name:?} is not [A-Za-z_][A-Za-z0-9_]*")]
    BadEnvName {
        /// The rejected name.
        name: String,
    },
}

/// One argument of a remote command: any string without a NUL byte.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShellWord(String);

impl ShellWord {
    /// Checks `text` for NUL bytes; `index` names the argument in the error.
    pub fn new(text: impl Into<String>, index: usize) -> Result<Self, CommandError> {
        let text = text.into();
        if let Some(nul_at) = text.find('\0') {
            return Err(CommandError::NulByte {
                index,
                preview: text[..nul_at].to_string(),
            });
        }
        Ok(Self(text))
    }

    /// The argument as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The argument quoted for a POSIX shell.
    pub fn quoted(&self) -> String {
        shell_quote(&self.0)
    }
}

impl fmt::Debug for ShellWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Quotes `text` for a POSIX shell: `'…'`, with each `'` written as `'\''`.
///
/// The result is one shell word that expands to exactly `text` (no globbing, no expansion, no
/// word splitting); `text` must not contain NUL (see [`ShellWord`]).
pub fn shell_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// A program and its arguments, run remotely with every word quoted.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    words: Vec<ShellWord>,
}

impl RemoteCommand {
    /// A command running `program` (a path or a name looked up in the remote `PATH`).
    pub fn new(program: impl Into<String>) -> Result<Self, CommandError> {
        let program = program.into();
        if program.is_empty() {
            return Err(CommandError::EmptyProgram);
        }
        Ok(Self {
            words: vec![ShellWord::new(program, 0)?],
        })
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Result<Self, CommandError> {
        let index = self.words.len();
        self.words.push(ShellWord::new(arg, index)?);
        Ok(self)
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Result<Self, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for arg in args {
            self = self.arg(arg)?;
        }
        Ok(self)
    }

    /// A command from a program and arguments in one call.
    pub fn from_argv<I, S>(argv: I) -> Result<Self, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut argv = argv.into_iter();
        let program = argv.next().ok_or(CommandError::EmptyProgram)?;
        Self::new(program)?.args(argv)
    }

    /// The same command run under `env NAME=value …`; names must be `[A-Za-z_][A-Za-z0-9_]*`.
    pub fn with_env<'a, I>(&self, vars: I) -> Result<Self, CommandError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut words = vec![ShellWord::new("env", 0)?];
        for (name, value) in vars {
            if !is_env_name(name) {
                return Err(CommandError::BadEnvName {
                    name: name.to_string(),
                });
            }
            words.push(ShellWord::new(format!("{name}={value}"), words.len())?);
        }
        words.extend(self.words.iter().cloned());
        Ok(Self { words })
    }

    /// The same arguments with another program.
    pub fn with_program(&self, program: impl Into<String>) -> Result<Self, CommandError> {
        let mut replaced = Self::new(program)?;
        replaced.words.extend(self.words[1..].iter().cloned());
        Ok(replaced)
    }

    /// The program and arguments, unquoted.
    pub fn words(&self) -> &[ShellWord] {
        &self.words
    }

    /// The program.
    pub fn program(&self) -> &str {
        self.words[0].as_str()
    }

    /// The command as one shell line: each word quoted, separated by spaces.
    pub fn to_shell(&self) -> String {
        let quoted: Vec<String> = self.words.iter().map(ShellWord::quoted).collect();
        quoted.join(" ")
    }
}

impl fmt::Debug for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RemoteCommand").field(&self.words).finish()
    }
}

impl fmt::Display for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_shell())
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A shell line composed from quoted words, whole quoted commands, numbers, and operator text
/// that is part of this crate's source (`&'static str`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellLine {
    line: String,
}

impl ShellLine {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends fixed shell text (operators, redirections, builtins) written in this crate.
    pub fn op(mut self, text: &'static str) -> Self {
        self.space();
        self.line.push_str(text);
        self
    }

    /// Appends one quoted word.
    pub fn word(mut self, word: &ShellWord) -> Self {
        self.space();
        self.line.push_str(&word.quoted());
        self
    }

    /// Appends a quoted word from text; fails on NUL.
    pub fn text(self, text: &str) -> Result<Self, CommandError> {
        Ok(self.word(&ShellWord::new(text, 0)?))
    }

    /// Appends a whole command, each of its words quoted.
    pub fn command(mut self, command: &RemoteCommand) -> Self {
        self.space();
        self.line.push_str(&command.to_shell());
        self
    }

    /// Appends a decimal number (digits are never special to the shell).
    pub fn num(mut self, value: u64) -> Self {
        self.space();
        self.line.push_str(&value.to_string());
        self
    }

    /// Appends a duration in seconds with millisecond precision (`0.050`), for `sleep`.
    pub fn seconds(mut self, duration_ms: u64) -> Self {
        self.space();
        self.line
            .push_str(&format!("{}.{:03}", duration_ms / 1000, duration_ms % 1000));
        self
    }

    /// Appends fixed text immediately after the previous token, without a space (`2>` + path).
    pub fn glued_op(mut self, text: &'static str) -> Self {
        self.line.push_str(text);
        self
    }

    /// Appends a decimal number immediately after the previous token (`-` + PID).
    pub fn glued_num(mut self, value: u64) -> Self {
        self.line.push_str(&value.to_string());
        self
    }

    /// Appends a quoted word immediately after the previous token, without a space.
    pub fn glued_word(mut self, word: &ShellWord) -> Self {
        self.line.push_str(&word.quoted());
        self
    }

    /// The line, ready for `exec`.
    pub fn as_str(&self) -> &str {
        &self.line
    }

    fn space(&mut self) {
        if !self.line.is_empty() {
            self.line.push(' ');
        }
    }
}

impl From<&RemoteCommand> for ShellLine {
    fn from(command: &RemoteCommand) -> Self {
        Self::new().command(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check_quote(text: &str, expected: Expect) {
        expected.assert_eq(&shell_quote(text));
    }

    #[test]
    fn quoting_examples() {
        check_quote("plain", expect![["'plain'"]]);
        check_quote("", expect![["''"]]);
        check_quote("it's", expect![["'it'\\''s'"]]);
        check_quote("$HOME `id` \"x\"", expect![["'$HOME `id` \"x\"'"]]);
        check_quote("a\nb", expect![["'a\nb'"]]);
    }

    #[test]
    fn nul_is_rejected_with_its_position() {
        let err = RemoteCommand::new("echo")
            .unwrap()
            .arg("ok")
            .unwrap()
            .arg("bad\0tail")
            .unwrap_err();
        assert_eq!(
            err,
            CommandError::NulByte {
                index: 2,
                preview: "bad".into()
            }
        );
    }

    #[test]
    fn empty_program_is_rejected() {
        assert_eq!(
            RemoteCommand::new("").unwrap_err(),
            CommandError::EmptyProgram
        );
        assert_eq!(
            RemoteCommand::from_argv(Vec::<String>::new()).unwrap_err(),
            CommandError::EmptyProgram
        );
    }

    #[test]
    fn env_names_are_checked_and_values_quoted() {
        let cmd = RemoteCommand::from_argv(["prog", "a b"]).unwrap();
        let with_env = cmd.with_env([("NAAM_X", "1; rm -rf /")]).unwrap();
        expect![["'env' 'NAAM_X=1; rm -rf /' 'prog' 'a b'"]].assert_eq(&with_env.to_shell());
        let err = cmd.with_env([("BAD NAME", "1")]).unwrap_err();
        assert_eq!(
            err,
            CommandError::BadEnvName {
                name: "BAD NAME".into()
            }
        );
    }

    #[test]
    fn shell_line_quotes_everything_but_static_operators() {
        let cmd = RemoteCommand::from_argv(["cat", "my file"]).unwrap();
        let out = ShellWord::new("o'ut", 0).unwrap();
        let line = ShellLine::new()
            .command(&cmd)
            .op(">")
            .word(&out)
            .op("&&")
            .op("sleep")
            .num(3);
        expect![["'cat' 'my file' > 'o'\\''ut' && sleep 3"]].assert_eq(line.as_str());
    }
}
