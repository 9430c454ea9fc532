# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_upkeep_embedded_global_optspecs
    string join \n root= format= h/help V/version
end

function __fish_upkeep_embedded_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_upkeep_embedded_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_upkeep_embedded_using_subcommand
    set -l cmd (__fish_upkeep_embedded_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c upkeep-embedded -n "__fish_upkeep_embedded_needs_command" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-embedded -n "__fish_upkeep_embedded_needs_command" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-embedded -n "__fish_upkeep_embedded_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_needs_command" -s V -l version -d 'Print version'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_needs_command" -f -a "status" -d 'Say whether the config enables the embedded instance, and why'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_needs_command" -f -a "disable" -d 'Switch the embedded instance off, reconfigure, verify, say what to do next'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_needs_command" -f -a "enable" -d 'Switch the embedded instance on, reconfigure, verify'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand status" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand status" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand disable" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand disable" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand disable" -l dry-run -d 'Show what would change (a unified diff where a file would change); change nothing'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand disable" -l no-reconfigure -d 'Edit the config only; do not run the host\'s reconfigure'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand disable" -l for-upgrade -d 'Comment out every setting the release that removed the bundled product rejects, on any host version'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand disable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand enable" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand enable" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand enable" -l dry-run -d 'Show what would change (a unified diff where a file would change); change nothing'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand enable" -l no-reconfigure -d 'Edit the config only; do not run the host\'s reconfigure'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand enable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand help; and not __fish_seen_subcommand_from status disable enable help" -f -a "status" -d 'Say whether the config enables the embedded instance, and why'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand help; and not __fish_seen_subcommand_from status disable enable help" -f -a "disable" -d 'Switch the embedded instance off, reconfigure, verify, say what to do next'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand help; and not __fish_seen_subcommand_from status disable enable help" -f -a "enable" -d 'Switch the embedded instance on, reconfigure, verify'
complete -c upkeep-embedded -n "__fish_upkeep_embedded_using_subcommand help; and not __fish_seen_subcommand_from status disable enable help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
