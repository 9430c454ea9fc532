fn main() {
    std::process::exit(upkeep_reconfigure::uumain(std::env::args_os()));
}
