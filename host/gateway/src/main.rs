// mimalloc: the request path allocates many small short-lived buffers, which glibc's
// allocator handles noticeably slower (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    memory_proxy::cli::main()
}
