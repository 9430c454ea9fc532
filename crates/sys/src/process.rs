//! Running another program with a deadline.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd`, feeding it `input` (none: stdin is /dev/null) and reading
/// its stdout and stderr while it runs, so a program that prints more than
/// a pipe holds never stalls on a full pipe. Killed at `timeout`: then
/// `Ok(None)`, without waiting for the output (a grandchild may still hold
/// the pipes).
pub fn run_with_timeout(
    cmd: &mut Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<Option<Output>> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), input) {
        let data = data.to_vec();
        // A broken pipe means the program stopped reading: its status says why.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Some(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn large_output_does_not_stall_and_input_arrives() {
        let mut c = Command::new("sh");
        c.args(["-c", "head -c 300000 /dev/zero; wc -c >&2"]);
        let o = run_with_timeout(&mut c, Some(b"12345"), Duration::from_secs(20))
            .unwrap()
            .unwrap();
        assert!(o.status.success());
        assert_eq!(o.stdout.len(), 300_000);
        assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "5");
    }

    #[test]
    fn a_hang_is_killed_at_the_deadline_even_with_a_grandchild() {
        let started = Instant::now();
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30; echo late"]);
        assert!(run_with_timeout(&mut c, None, Duration::from_millis(200))
            .unwrap()
            .is_none());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
