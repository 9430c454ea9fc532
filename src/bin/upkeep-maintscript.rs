fn main() {
    std::process::exit(upkeep_maintscript::uumain(std::env::args_os()));
}
