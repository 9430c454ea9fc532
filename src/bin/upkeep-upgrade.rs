fn main() {
    std::process::exit(upkeep_upgrade::uumain(std::env::args_os()));
}
