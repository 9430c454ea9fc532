fn main() {
    std::process::exit(upkeep_lease::uumain(std::env::args_os()));
}
