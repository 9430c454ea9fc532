complete -c upkeep-reconfigure -l host -d 'Which host product\'s reconfigure, as the manifests name it (default: the one host a manifest declares)' -r
complete -c upkeep-reconfigure -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-reconfigure -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-reconfigure -l no-check -d 'Skip upkeep-guard\'s check before and after the reconfigure'
complete -c upkeep-reconfigure -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-reconfigure -s V -l version -d 'Print version'
