# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_upkeep_upgrade_global_optspecs
    string join \n root= format= h/help V/version
end

function __fish_upkeep_upgrade_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_upkeep_upgrade_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_upkeep_upgrade_using_subcommand
    set -l cmd (__fish_upkeep_upgrade_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -s V -l version -d 'Print version'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "plan" -d 'Print the plan (versions, policy, stops, steps, preserved and unknown paths); change nothing'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "apply" -d 'Upgrade through every ARCHIVE in version order, each step verified; a version-up ([versionup] in the manifest) takes an optional INSTALLER, its path inside the system, and may stop at the operator\'s steps (exit 5)'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "install" -d 'First install from ARCHIVE, with the same checks, staging and journal as an upgrade'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "rollback" -d 'Go back to the release kept after the last upgrade, with its verified config backup'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "resume" -d 'Go on with a version-up stopped at the operator\'s step (a reboot: confirmed by a changed boot id) or interrupted'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "recover" -d 'Finish or undo an interrupted upgrade; silent when there is none'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "backup" -d 'Back up PRODUCT now as apply does first (config, local data, database), verified'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "backups" -d 'List the backups of PRODUCT and verify each against its checksums'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "check" -d 'Run the manifest\'s preflight checks (database, TLS, extensions, logs); change nothing'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand plan" -l set -d 'Override a config.json setting (JSON value): Section.Key=JSON' -r
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand plan" -l db-url -d 'The database the preflight checks instead of the one in the product\'s config, sslmode included' -r
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand plan" -l log-file -d 'Another log for the preflight\'s pattern check; repeatable' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand plan" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand plan" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand plan" -l skip-db-backup -d 'Plan without the database dump'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l set -d 'Override a config.json setting (JSON value): Section.Key=JSON' -r
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l db-backup-by -d 'The database dump of this upgrade was taken on NODE (a fleet\'s one dump of its shared database): none here' -r
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l phase -d 'Only this phase of a copy-over upgrade (each needs the one before; a phase made already changes nothing)' -r -f -a "prepare\t''
stop\t''
swap\t''
start\t''
verify\t''"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l db-url -d 'The database the preflight checks and the dump reads instead of the one in the product\'s config, sslmode included' -r
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l log-file -d 'Another log for the preflight\'s pattern check; repeatable' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l skip-db-backup -d 'Upgrade without dumping the database first (on purpose; refused where the schema may change)'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -l dry-run -d 'Show what would change (a unified diff where a file would change); change nothing'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand install" -l set -d 'Override a config.json setting (JSON value): Section.Key=JSON' -r
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand install" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand install" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand install" -l dry-run -d 'Show what would change (a unified diff where a file would change); change nothing'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand rollback" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand rollback" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand rollback" -l restore-database -d 'Also restore the backup\'s database dump (the database as it is is dumped first; changes since the backup are lost)'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand rollback" -l dry-run -d 'Show what would change (a unified diff where a file would change); change nothing'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand resume" -l confirm -d 'The operator\'s step now done, by its id as apply printed it (a reboot needs none: a changed boot id confirms it)' -r
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand resume" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand resume" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand resume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand recover" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand recover" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand recover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand backup" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand backup" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand backup" -l skip-db-backup -d 'Without the database dump (on purpose)'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand backups" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand backups" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand backups" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand check" -l db-url -d 'The database to check instead of the one in the product\'s config, sslmode included' -r
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand check" -l log-file -d 'Another log for the pattern check (e.g. a journalctl export); repeatable' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand check" -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand check" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "plan" -d 'Print the plan (versions, policy, stops, steps, preserved and unknown paths); change nothing'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "apply" -d 'Upgrade through every ARCHIVE in version order, each step verified; a version-up ([versionup] in the manifest) takes an optional INSTALLER, its path inside the system, and may stop at the operator\'s steps (exit 5)'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "install" -d 'First install from ARCHIVE, with the same checks, staging and journal as an upgrade'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "rollback" -d 'Go back to the release kept after the last upgrade, with its verified config backup'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "resume" -d 'Go on with a version-up stopped at the operator\'s step (a reboot: confirmed by a changed boot id) or interrupted'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "recover" -d 'Finish or undo an interrupted upgrade; silent when there is none'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "backup" -d 'Back up PRODUCT now as apply does first (config, local data, database), verified'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "backups" -d 'List the backups of PRODUCT and verify each against its checksums'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "check" -d 'Run the manifest\'s preflight checks (database, TLS, extensions, logs); change nothing'
complete -c upkeep-upgrade -n "__fish_upkeep_upgrade_using_subcommand help; and not __fish_seen_subcommand_from plan apply install rollback resume recover backup backups check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
