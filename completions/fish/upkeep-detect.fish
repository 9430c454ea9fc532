complete -c upkeep-detect -l owner -d 'Instead of detecting, print the packages owning PATH (like dpkg -S, rpm -qf)' -r -F
complete -c upkeep-detect -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-detect -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-detect -l allow-exec -d 'Run product binaries where a manifest allows it (to read a version or edition), with a timeout'
complete -c upkeep-detect -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-detect -s V -l version -d 'Print version'
