fn main() {
    std::process::exit(upkeep_guard::uumain(std::env::args_os()));
}
