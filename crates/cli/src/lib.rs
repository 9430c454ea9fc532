//! What every binary shares: the common flags (each defined once here, so
//! help, man pages and completions agree), the one exit-status table, the
//! man-page extras, logging and output.

pub mod flags;
pub mod manual;

pub use flags::{AllowExec, CommonArgs, DryRun, Format, Strict, Wait};
pub use manual::Manual;

use std::ffi::OsString;
use std::io::Write;
use upkeep_sys::error::{Error, ExitCode};

/// Logging to stderr, off unless `UPKEEP_LOG` asks (hooks stay quiet).
pub fn init_logging() {
    let env = env_logger::Env::new().filter_or("UPKEEP_LOG", "warn");
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp(None)
        .try_init();
}

/// Parses arguments with clap, runs `body`, and turns the result into an
/// exit code: clap's own for usage errors (2) and help (0), the error's for
/// failures (message on stderr, prefixed with the binary's name).
pub fn run<P, F>(name: &str, args: impl IntoIterator<Item = OsString>, body: F) -> i32
where
    P: clap::Parser,
    F: FnOnce(P) -> Result<ExitCode, Error>,
{
    init_logging();
    let parsed = match P::try_parse_from(args) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage.code()
            } else {
                0
            };
        }
    };
    match body(parsed) {
        Ok(code) => code.code(),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("{name}: {e}");
            e.exit_code().code()
        }
    }
}

/// Writes all of `text` to stdout; a closed pipe (`| head`) is not an
/// error worth a message, any other write error is.
pub fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(std::path::Path::new("<stdout>"), e))
}

/// Serialises a report as pretty JSON with a final newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| Error::Failed(e.to_string()))?;
    s.push('\n');
    print(&s)
}
