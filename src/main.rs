//! The `dgram` executable: everything happens in the library.

fn main() -> std::process::ExitCode {
    dgram::cli::main()
}
