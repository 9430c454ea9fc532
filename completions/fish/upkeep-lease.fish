# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_upkeep_lease_global_optspecs
    string join \n wait= root= format= h/help V/version
end

function __fish_upkeep_lease_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_upkeep_lease_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_upkeep_lease_using_subcommand
    set -l cmd (__fish_upkeep_lease_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -l wait -d 'Wait this many seconds for another upkeep\'s lock before giving up (exit 75)' -r
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -s V -l version -d 'Print version'
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -f -a "grant" -d 'Record each path\'s owner, group, mode and capabilities, then lend it to USER'
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -f -a "restore" -d 'Give back exactly what was recorded and close the lease'
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -f -a "status" -d 'List open leases and when they expire'
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -f -a "recover" -d 'Restore expired leases, finish what a crash interrupted, close leases a package upgrade made moot'
complete -c upkeep-lease -n "__fish_upkeep_lease_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l to -d 'Lend to USER, or USER:GROUP to change the group too' -r
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l expires -d 'Give everything back automatically after this long (recover, run by the timer, does it)' -r
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l product -d 'Lend what the product\'s manifest names for an in-place upgrade' -r
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l wait -d 'Wait this many seconds for another upkeep\'s lock before giving up (exit 75)' -r
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l dir -d 'Also lend the directory holding each path'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l private -d 'Lend a new private directory holding only the binary instead: the binary moves into it for the lease, a link stays at its path'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -l dry-run -d 'Show what would change (a unified diff where a file would change); change nothing'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand grant" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand restore" -l wait -d 'Wait this many seconds for another upkeep\'s lock before giving up (exit 75)' -r
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand restore" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand restore" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand restore" -l all -d 'Every open lease'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand status" -l wait -d 'Wait this many seconds for another upkeep\'s lock before giving up (exit 75)' -r
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand status" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand status" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand recover" -l wait -d 'Wait this many seconds for another upkeep\'s lock before giving up (exit 75)' -r
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand recover" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand recover" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand recover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand help; and not __fish_seen_subcommand_from grant restore status recover help" -f -a "grant" -d 'Record each path\'s owner, group, mode and capabilities, then lend it to USER'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand help; and not __fish_seen_subcommand_from grant restore status recover help" -f -a "restore" -d 'Give back exactly what was recorded and close the lease'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand help; and not __fish_seen_subcommand_from grant restore status recover help" -f -a "status" -d 'List open leases and when they expire'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand help; and not __fish_seen_subcommand_from grant restore status recover help" -f -a "recover" -d 'Restore expired leases, finish what a crash interrupted, close leases a package upgrade made moot'
complete -c upkeep-lease -n "__fish_upkeep_lease_using_subcommand help; and not __fish_seen_subcommand_from grant restore status recover help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
