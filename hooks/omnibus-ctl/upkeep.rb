# gitlab-ctl upkeep-check: what a reconfigure or a package upgrade would undo
# (an Enterprise Edition Mattermost binary put back to Team Edition), and
# what already was. Omnibus loads every *.rb in
# /opt/gitlab/embedded/service/omnibus-ctl*/ as a gitlab-ctl command file.
add_command_under_category 'upkeep-check', 'upkeep', 'Warn about local changes that a reconfigure or package upgrade would undo (upkeep-guard check)', 2 do |_cmd_name, *args|
  exec('/usr/bin/upkeep-guard', 'check', *args)
end
