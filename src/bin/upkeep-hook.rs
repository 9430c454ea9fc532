fn main() {
    std::process::exit(upkeep_hookscan::front::main(std::env::args_os()));
}
