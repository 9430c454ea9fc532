# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_upkeep_guard_global_optspecs
    string join \n root= format= h/help V/version
end

function __fish_upkeep_guard_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_upkeep_guard_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_upkeep_guard_using_subcommand
    set -l cmd (__fish_upkeep_guard_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -s V -l version -d 'Print version'
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -f -a "check" -d 'Report binaries a package upgrade, reinstall or reconfigure would revert, and reverts already done'
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -f -a "ack" -d 'Stop reporting a revert: the local change is gone for good, or will be made again later'
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -f -a "apt-hook" -d 'apt DPkg::Pre-Install-Pkgs hook (protocol 3 on APT_HOOK_INFO_FD, else stdin)'
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -f -a "dpkg-trigger" -d 'dpkg file trigger: report reverts, record the new state, close moot leases'
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -f -a "rpm-trigger" -d 'rpm %triggerin/%triggerpostun: report reverts, record the new state, close moot leases'
complete -c upkeep-guard -n "__fish_upkeep_guard_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand check" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand check" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand check" -l strict -d 'Exit 4 when there is a finding (something at risk or already reverted)'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand check" -l allow-exec -d 'Run product binaries where a manifest allows it (to read a version or edition), with a timeout'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand check" -l record -d 'Record what is seen now (check is read-only without it; the triggers record)'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand ack" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand ack" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand ack" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand apt-hook" -l caller -d 'The package manager that runs the hook (dnf\'s plugin speaks apt\'s protocol too)' -r -f -a "apt\t''
dnf\t''"
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand apt-hook" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand apt-hook" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand apt-hook" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand dpkg-trigger" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand dpkg-trigger" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand dpkg-trigger" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand rpm-trigger" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand rpm-trigger" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand rpm-trigger" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand help; and not __fish_seen_subcommand_from check ack apt-hook dpkg-trigger rpm-trigger help" -f -a "check" -d 'Report binaries a package upgrade, reinstall or reconfigure would revert, and reverts already done'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand help; and not __fish_seen_subcommand_from check ack apt-hook dpkg-trigger rpm-trigger help" -f -a "ack" -d 'Stop reporting a revert: the local change is gone for good, or will be made again later'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand help; and not __fish_seen_subcommand_from check ack apt-hook dpkg-trigger rpm-trigger help" -f -a "apt-hook" -d 'apt DPkg::Pre-Install-Pkgs hook (protocol 3 on APT_HOOK_INFO_FD, else stdin)'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand help; and not __fish_seen_subcommand_from check ack apt-hook dpkg-trigger rpm-trigger help" -f -a "dpkg-trigger" -d 'dpkg file trigger: report reverts, record the new state, close moot leases'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand help; and not __fish_seen_subcommand_from check ack apt-hook dpkg-trigger rpm-trigger help" -f -a "rpm-trigger" -d 'rpm %triggerin/%triggerpostun: report reverts, record the new state, close moot leases'
complete -c upkeep-guard -n "__fish_upkeep_guard_using_subcommand help; and not __fish_seen_subcommand_from check ack apt-hook dpkg-trigger rpm-trigger help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
