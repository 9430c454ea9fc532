fn main() {
    std::process::exit(upkeep_detect::uumain(std::env::args_os()));
}
