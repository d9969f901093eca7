//! tunmcastd: see the `stack` library, which is the daemon; this is its entry point.

fn main() -> std::process::ExitCode {
    stack::main()
}
