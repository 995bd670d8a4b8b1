//! `out!` and `outln!`: print to stdout, and end quietly (exit 0) when the reader has gone away,
//! as in `mosaicctl get meshes | head -1`, instead of panicking like `println!` does;
//! `warnln!`: one `warning: ...` line on stderr.

/// Writes to stdout; a closed pipe ends the program with status 0.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Like `print!`, but a closed pipe is not a panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// Like `println!`, but a closed pipe is not a panic.
macro_rules! outln {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes one line to stderr; a closed stderr is not an error (nor a panic).
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `warning: <text>` on stderr.
macro_rules! warnln {
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!("warning: {}\n", format_args!($($arg)*))) };
}
