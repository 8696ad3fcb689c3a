fn main() -> std::process::ExitCode {
    memory_proxy::cli::main()
}
