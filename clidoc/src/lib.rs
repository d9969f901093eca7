//! Man pages and shell completions from the clap definitions of the binaries, so that what
//! `--help` says, the man page says and the shell completes are one thing. Each binary has a
//! hidden `--generate WHAT` option that prints one of them (as ripgrep's `--generate` does);
//! `scripts/install.sh` installs them all.

use std::io::{self, Write};

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generate {
    /// The man page (roff), for `man -l` or MANPATH.
    Man,
    /// bash completion script.
    Bash,
    /// zsh completion function (`_NAME`).
    Zsh,
    /// fish completions.
    Fish,
}

/// The hidden `--generate WHAT` (or `--generate=WHAT`) in `argv`, looked for before clap
/// parses: the binaries' required options need not be given with it. `Err` says what is wrong
/// with WHAT.
pub fn requested(argv: &[std::ffi::OsString]) -> Option<Result<Generate, String>> {
    use clap::ValueEnum;
    let mut args = argv.iter().skip(1).map(|a| a.to_string_lossy());
    let value = loop {
        let arg = args.next()?;
        if arg == "--" {
            return None;
        }
        if arg == "--generate" {
            break args.next().map(|v| v.into_owned()).unwrap_or_default();
        }
        if let Some(value) = arg.strip_prefix("--generate=") {
            break value.to_string();
        }
    };
    Some(
        Generate::from_str(&value, false)
            .map_err(|_| format!("--generate {value:?}: expected one of man, bash, zsh, fish")),
    )
}

/// Handles a `--generate` request in `argv` for `command`: the exit status, or `None` when
/// there is none and the binary should run as usual.
/// `section` is the man section: 8 for the daemon, 1 for the commands.
pub fn handle(
    argv: &[std::ffi::OsString],
    command: clap::Command,
    section: &'static str,
) -> Option<std::process::ExitCode> {
    Some(match requested(argv)? {
        Ok(what) => print(command, what, section),
        Err(message) => {
            eprintln!("{}: {message}", command.get_name());
            std::process::ExitCode::from(2)
        }
    })
}

/// Writes `what` for `command` to `out`.
pub fn write(
    mut command: clap::Command,
    what: Generate,
    section: &'static str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let name = command.get_name().to_string();
    let shell = match what {
        Generate::Man => {
            return clap_mangen::Man::new(command)
                .section(section)
                .manual("tunmcast")
                .render(out)
        }
        Generate::Bash => clap_complete::Shell::Bash,
        Generate::Zsh => clap_complete::Shell::Zsh,
        Generate::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, name, out);
    Ok(())
}

/// Prints `what` for `command` on stdout; the process exit status to use.
pub fn print(
    command: clap::Command,
    what: Generate,
    section: &'static str,
) -> std::process::ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match write(command, what, section, &mut out).and_then(|()| out.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write the {what:?} output: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_found_before_parsing() {
        let argv = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            requested(&argv(&["x", "--generate", "man"])),
            Some(Ok(Generate::Man))
        );
        assert_eq!(
            requested(&argv(&["x", "--generate=fish"])),
            Some(Ok(Generate::Fish))
        );
        assert!(matches!(
            requested(&argv(&["x", "--generate", "pdf"])),
            Some(Err(_))
        ));
        assert!(matches!(
            requested(&argv(&["x", "--generate"])),
            Some(Err(_))
        ));
        assert_eq!(requested(&argv(&["x", "show"])), None);
        assert_eq!(requested(&argv(&["x", "--", "--generate", "man"])), None);
    }

    #[test]
    fn every_kind_renders_the_options() {
        let command = clap::Command::new("demo")
            .about("A demo")
            .arg(clap::Arg::new("iface").long("iface").help("The device"));
        for what in [Generate::Man, Generate::Bash, Generate::Zsh, Generate::Fish] {
            let mut out = Vec::new();
            write(command.clone(), what, "1", &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("iface"), "{what:?}: {text}");
        }
    }
}
