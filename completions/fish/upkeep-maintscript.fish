complete -c upkeep-maintscript -l scriptlet -d 'rpm: which scriptlet calls (pre, post, preun, postun, posttrans); deb: $DPKG_MAINTSCRIPT_NAME' -r
complete -c upkeep-maintscript -l old-version -d 'The version being replaced, where the package manager does not say (rpm: by default read from the root\'s rpm database)' -r
complete -c upkeep-maintscript -l new-version -d 'The version being installed, where the package manager does not say (rpm: %{version}-%{release})' -r
complete -c upkeep-maintscript -l root -d 'Act on the system below DIR instead of / (default: $DPKG_ROOT, else /)' -r -F
complete -c upkeep-maintscript -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For scripts; field names are stable'"
complete -c upkeep-maintscript -s h -l help -d 'Print help (see more with \'--help\')'
complete -c upkeep-maintscript -s V -l version -d 'Print version'
