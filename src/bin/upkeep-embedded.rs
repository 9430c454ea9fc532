fn main() {
    std::process::exit(upkeep_embedded::uumain(std::env::args_os()));
}
