fn main() -> std::process::ExitCode {
    roleledger::cli::run()
}
